-- Same schema as migrations/postgres/0007 (see the comments there).
create table event (
    id          integer primary key autoincrement,
    event_id    blob        not null unique,
    type        text        not null,
    object_type text        not null,
    object_id   text        not null,
    -- 1, 2, 3… per object, in commit order of that object's changes
    sequence    bigint      not null,
    occurred_at text not null,
    data        text       not null,
    -- set once the event has been fanned out to callbacks
    spread_at   text
);
create unique index event_object_sequence on event (object_type, object_id, sequence);
create index event_unspread_idx on event (id) where spread_at is null;
create index event_occurred_idx on event (occurred_at);

-- The last sequence number given to each object's events; its row lock orders the writers of
-- one object.
create table event_sequence (
    object_type   text   not null,
    object_id     text   not null,
    last_sequence bigint not null,
    primary key (object_type, object_id)
);

create table callback (
    id               blob        primary key,
    -- as the subscriber gave it, and normalised for matching ('' matches every event type)
    topic            text        not null,
    topic_prefix     text        not null,
    callback_url     text        not null,
    secret           text,
    state            text        not null check (state in ('pending', 'active', 'denied', 'expired', 'disabled', 'unsubscribed', 'gone')),
    state_reason     text,
    lease_seconds    bigint      not null,
    lease_expires_at text,
    batch_size       integer     not null default 1,
    -- first failed attempt since the last success
    failing_since    text,
    created_by       bigint      references app_user (id) on delete set null,
    created_at       text not null,
    updated_at       text not null,
    verified_at      text,
    unique (topic_prefix, callback_url)
);
create index callback_active_idx on callback (topic_prefix) where state = 'active';

create table delivery (
    id               integer primary key autoincrement,
    event_id         bigint      not null references event (id) on delete cascade,
    callback_id      blob        not null references callback (id) on delete cascade,
    state            text        not null check (state in ('pending', 'running', 'succeeded', 'failed')),
    -- attempts since the delivery was created or last retried by hand
    attempts         integer     not null default 0,
    next_attempt_at  text not null,
    locked_until     text,
    locked_by        text,
    last_status_code integer,
    last_error       text,
    created_at       text not null,
    updated_at       text not null,
    delivered_at     text,
    unique (event_id, callback_id)
);
create index delivery_due_idx on delivery (next_attempt_at, id) where state = 'pending';
create index delivery_running_idx on delivery (locked_until) where state = 'running';
create index delivery_failed_idx on delivery (callback_id) where state = 'failed';
create index delivery_callback_idx on delivery (callback_id, id);

create table delivery_attempt (
    id              integer primary key autoincrement,
    delivery_id     bigint      not null references delivery (id) on delete cascade,
    attempted_at    text not null,
    status_code     integer,
    duration_ms     integer     not null,
    response_body   text,
    error           text,
    next_attempt_at text
);
create index delivery_attempt_delivery_idx on delivery_attempt (delivery_id, id);
