-- Same changes as migrations/postgres/0009 (see the comments there). SQLite cannot drop a table
-- constraint, so the callback table is rebuilt in SQLite's documented way (copy, drop, rename);
-- `Db::migrate` runs SQLite's migrations with foreign keys off, so dropping the old table does
-- not cascade to deliveries, and checks every reference afterwards.
--
-- SQLite has one writer at a time and `autoincrement` ids, so event ids are in commit order: an
-- activation keeps the last event id it could see, and later events are for the callback.
create table callback_owned (
    id               blob        primary key,
    topic            text        not null,
    topic_prefix     text        not null,
    callback_url     text        not null,
    secret           text,
    state            text        not null check (state in ('pending', 'active', 'denied', 'expired', 'disabled', 'unsubscribed', 'gone')),
    state_reason     text,
    lease_seconds    bigint      not null,
    lease_expires_at text,
    batch_size       integer     not null default 1,
    failing_since    text,
    created_by       bigint      references app_user (id) on delete set null,
    created_at       text not null,
    updated_at       text not null,
    verified_at      text,
    activated_after_event bigint,
    unique (created_by, topic_prefix, callback_url)
);
insert into callback_owned (id, topic, topic_prefix, callback_url, secret, state, state_reason,
        lease_seconds, lease_expires_at, batch_size, failing_since, created_by, created_at,
        updated_at, verified_at)
    select id, topic, topic_prefix, callback_url, secret, state, state_reason, lease_seconds,
        lease_expires_at, batch_size, failing_since, created_by, created_at, updated_at,
        verified_at
    from callback;
drop table callback;
alter table callback_owned rename to callback;
create index callback_active_idx on callback (topic_prefix) where state = 'active';
alter table subscription add column queued_sends integer not null default 0;
