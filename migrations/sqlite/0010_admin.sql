-- Same schema as migrations/postgres/0010 (see the comments there), in SQLite's types.
alter table app_user add column password_hash text;

create table admin_session (
    id_hash      text    primary key,
    user_id      integer not null references app_user (id) on delete cascade,
    token_id     integer references api_token (id) on delete cascade,
    csrf_token   text    not null,
    created_at   text    not null,
    last_seen_at text    not null
);
create index admin_session_user_idx on admin_session (user_id);

create table admin_login_attempt (
    id           integer primary key autoincrement,
    email        text    not null,
    address      text    not null,
    succeeded    boolean not null,
    attempted_at text    not null
);
create index admin_login_attempt_email_idx on admin_login_attempt (email, attempted_at);
create index admin_login_attempt_address_idx on admin_login_attempt (address, attempted_at);
