-- Same schema as migrations/postgres/0015 (see the comments there); the clock is SQLite's
-- julianday('now'), turned into seconds since the Unix epoch.
create table send_rate (
    name        text    primary key,
    tokens      real    not null,
    refilled_at real    not null,
    granted     integer not null default 0
);
