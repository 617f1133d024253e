-- Same schema as migrations/postgres/0003 (see the comments there); UUIDs are 16-byte blobs.
create table subscription (
    id                       blob    primary key,
    identity                 blob    not null,
    version                  integer not null default 1,
    message_set_id           integer not null references message_set (id) on delete restrict,
    next_sequence_number     integer not null check (next_sequence_number >= 1),
    initial_sequence_number  integer,
    lang                     text    not null,
    active                   boolean not null default true,
    completed                boolean not null default false,
    schedule_id              integer not null references schedule (id) on delete restrict,
    process_status           integer not null default 0 check (process_status between -2 and 2),
    metadata                 text,
    created_at               text    not null,
    updated_at               text    not null,
    created_by               integer references app_user (id) on delete set null,
    updated_by               integer references app_user (id) on delete set null,
    send_requested_at        text
);
create index subscription_identity_idx on subscription (identity);
create index subscription_message_set_idx on subscription (message_set_id);
create index subscription_created_at_idx on subscription (created_at, id);
create index subscription_due_idx on subscription (schedule_id) where active and not completed;
