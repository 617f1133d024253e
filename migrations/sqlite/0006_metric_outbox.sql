-- Same schema as migrations/postgres/0006 (see the comments there).
create table metric_outbox (
    id          integer primary key autoincrement,
    name        text    not null,
    value       real    not null,
    created_at  text    not null
);
