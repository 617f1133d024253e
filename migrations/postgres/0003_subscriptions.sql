-- Each person's subscription to a message set. UUID ids, as in the original: hubs and the
-- Seed Scheduler's POST-back URLs carry them.
create table subscription (
    id                       uuid        primary key,
    identity                 uuid        not null,
    version                  integer     not null default 1,
    message_set_id           bigint      not null references message_set (id) on delete restrict,
    next_sequence_number     integer     not null check (next_sequence_number >= 1),
    initial_sequence_number  integer,
    lang                     text        not null,
    active                   boolean     not null default true,
    completed                boolean     not null default false,
    schedule_id              bigint      not null references schedule (id) on delete restrict,
    -- -2, -1 error; 0 ready; 1 a send is in progress; 2 completed (the original's codes)
    process_status           smallint    not null default 0 check (process_status between -2 and 2),
    metadata                 jsonb,
    created_at               timestamptz not null,
    updated_at               timestamptz not null,
    created_by               bigint references app_user (id) on delete set null,
    updated_by               bigint references app_user (id) on delete set null,
    -- When a send was last asked for (Scheduler POST-back or tick): a second request within the
    -- configured window is a duplicate delivery and is ignored.
    send_requested_at        timestamptz
);
create index subscription_identity_idx on subscription (identity);
create index subscription_message_set_idx on subscription (message_set_id);
create index subscription_created_at_idx on subscription (created_at, id);
-- The bulk scheduler picks the due subscriptions of one schedule.
create index subscription_due_idx on subscription (schedule_id) where active and not completed;
