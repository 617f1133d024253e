-- Same schema as migrations/postgres/0004 (see the comments there).
create table job (
    id            integer primary key autoincrement,
    task_id       blob    not null,
    kind          text    not null,
    payload       text    not null,
    state         text    not null default 'pending' check (state in ('pending', 'running', 'failed')),
    attempts      integer not null default 0,
    max_attempts  integer not null,
    run_at        text    not null,
    locked_until  text,
    locked_by     text,
    last_error    text,
    dedupe_key    text,
    subscription_id blob,
    created_at    text    not null,
    updated_at    text    not null,
    failed_at     text
);
create index job_pending_idx on job (run_at, id) where state = 'pending';
create index job_running_idx on job (locked_until) where state = 'running';
create index job_failed_idx on job (failed_at) where state = 'failed';
create unique index job_dedupe_key on job (dedupe_key) where state in ('pending', 'running');
create unique index job_send_once on job (subscription_id)
    where kind = 'send_message' and state in ('pending', 'running');
