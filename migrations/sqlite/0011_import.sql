-- Bookkeeping of `sbm import django` (docs/import.md).
--
-- Content and subscriptions keep their Django ids, so a re-run finds them by id. Users, tokens
-- and send failures get sbm ids of their own; `import_key` remembers which sbm row each
-- imported source row became, so that a re-run updates (or removes) exactly what an earlier run
-- wrote and never a user, token or job made in sbm itself. Tokens are keyed by their SHA-256,
-- never by the token.
create table import_key (
    source_table  text   not null,
    source_key    text   not null,
    target_id     integer not null,
    primary key (source_table, source_key)
);

-- One row per committed run, with its per-table report.
create table import_run (
    id              integer primary key autoincrement,
    -- the source URL without its password
    source          text        not null,
    schema_version  text        not null,
    started_at      text        not null,
    finished_at     text        not null,
    report          text        not null
);
