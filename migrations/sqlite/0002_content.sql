-- Same schema as migrations/postgres/0002 (see the comments there), in SQLite's types.
create table schedule (
    id             integer primary key autoincrement,
    minute         text not null default '*',
    hour           text not null default '*',
    day_of_week    text not null default '*',
    day_of_month   text not null default '*',
    month_of_year  text not null default '*',
    created_at     text not null,
    updated_at     text not null
);

create table message_set (
    id                   integer primary key autoincrement,
    short_name           text    not null,
    label                text    not null default '',
    notes                text,
    channel              text,
    next_set_id          integer references message_set (id) on delete restrict,
    default_schedule_id  integer not null references schedule (id) on delete restrict,
    content_type         text    not null check (content_type in ('text', 'audio')),
    created_at           text    not null,
    updated_at           text    not null,
    constraint message_set_short_name_key unique (short_name)
);
create index message_set_next_set_idx on message_set (next_set_id);
create index message_set_default_schedule_idx on message_set (default_schedule_id);

create table binary_content (
    id            integer primary key autoincrement,
    path          text    not null,
    media_type    text    not null,
    size_bytes    integer not null,
    created_at    text    not null,
    updated_at    text    not null
);

create table message (
    id                 integer primary key autoincrement,
    message_set_id     integer not null references message_set (id) on delete restrict,
    sequence_number    integer not null check (sequence_number >= 1),
    lang               text    not null,
    text_content       text,
    binary_content_id  integer references binary_content (id) on delete restrict,
    metadata           text,
    created_at         text    not null,
    updated_at         text    not null,
    constraint message_set_sequence_lang_key unique (message_set_id, sequence_number, lang)
);
create index message_binary_content_idx on message (binary_content_id);
