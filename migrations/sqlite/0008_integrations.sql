-- Same schema as migrations/postgres/0008 (see the comments there).

create table integration_group (
    name             text        primary key,
    method           text        not null check (method in ('poll', 'send')),
    title            text        not null,
    description      text        not null default '',
    -- how long a fetched or pushed batch is held from other pollers and pushes
    lease_seconds    integer     not null,
    -- send groups: where, how and when batches are pushed
    target_url       text,
    auth_header      text,
    format           text        not null check (format in ('json', 'ndjson', 'csv')),
    minute           text        not null,
    hour             text        not null,
    day_of_week      text        not null,
    day_of_month     text        not null,
    month_of_year    text        not null,
    max_batch_size   integer     not null,
    skip_empty       boolean     not null,
    -- pushes happen only on the sbm instance of this name
    instance         text        not null,
    next_push_at     text,
    last_push_at     text,
    created_at       text not null,
    updated_at       text not null
);
create index integration_group_push_idx on integration_group (next_push_at) where method = 'send';

-- The event types that feed a group, normalised for matching as callback topics are.
create table integration_group_topic (
    group_name   text not null references integration_group (name) on delete cascade,
    topic        text not null,
    topic_prefix text not null,
    primary key (group_name, topic_prefix)
);

create table integration_message (
    id                integer primary key autoincrement,
    group_name        text        not null references integration_group (name) on delete cascade,
    -- the event it was made from (its public id), if any
    event_id          blob,
    created_at        text not null,
    data              text       not null,
    manual_created_by bigint      references app_user (id) on delete set null,
    sent_at           text,
    -- held by a fetched or pushed batch until then
    leased_until      text
);
create index integration_message_waiting_idx on integration_message (group_name, id) where sent_at is null;
create index integration_message_group_idx on integration_message (group_name, id);

-- A fetched or pushed batch: the token's hash and exactly the ids it holds.
create table integration_batch (
    token_hash   text        primary key,
    group_name   text        not null references integration_group (name) on delete cascade,
    message_ids  text       not null,
    created_at   text not null,
    marked_at    text
);
create index integration_batch_group_idx on integration_batch (group_name, created_at);

create table integration_error (
    id              integer primary key autoincrement,
    group_name      text        not null references integration_group (name) on delete cascade,
    occurred_at     text not null,
    source          text        not null,
    message         text        not null,
    details         text       not null,
    acknowledged_at text,
    acknowledged_by bigint      references app_user (id) on delete set null
);
create index integration_error_group_idx on integration_error (group_name, id);
create index integration_error_open_idx on integration_error (id) where acknowledged_at is null;

-- Who added a message by hand or marked it unsent, and when.
create table integration_audit (
    id          integer primary key autoincrement,
    message_id  bigint      not null references integration_message (id) on delete cascade,
    action      text        not null,
    user_id     bigint      references app_user (id) on delete set null,
    at          text not null
);
create index integration_audit_message_idx on integration_audit (message_id, id);

-- A token may be limited to part of the API: `integration-poll:<group>` may only fetch and mark
-- that group's messages. Null: the whole API the user may use.
alter table api_token add column scope text;
