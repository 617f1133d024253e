-- Same schema as migrations/postgres/0001 (see the comments there), in SQLite's types:
-- timestamps are RFC 3339 text written by the application.
create table app_user (
    id          integer primary key autoincrement,
    email       text    not null,
    is_admin    boolean not null default false,
    is_active   boolean not null default true,
    created_at  text    not null,
    constraint app_user_email_key unique (email)
);

create table api_token (
    id          integer primary key autoincrement,
    user_id     integer not null references app_user (id) on delete cascade,
    token_hash  text    not null,
    prefix      text    not null,
    created_at  text    not null,
    revoked_at  text,
    constraint api_token_hash_key unique (token_hash)
);
create index api_token_user_idx on api_token (user_id);
