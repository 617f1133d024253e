-- Same schema as migrations/postgres/0005 (see the comments there).
create table schedule_tick (
    schedule_id  integer not null references schedule (id) on delete cascade,
    minute       text    not null,
    enqueued     integer not null default 0,
    fired_at     text    not null,
    primary key (schedule_id, minute)
);
