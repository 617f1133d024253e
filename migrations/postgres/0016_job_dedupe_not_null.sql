-- Only jobs with a dedupe key have an entry in its unique index. Sends have none (they are kept
-- to one per subscription by job_send_once), so a million-send tick wrote a million null entries
-- into this index for nothing: the tick's INSERT … SELECT at 200,000 sends took 2.35 s with
-- them and 1.70 s without (issue 19, docs/benchmarks.md).
drop index job_dedupe_key;
create unique index job_dedupe_key on job (dedupe_key)
    where dedupe_key is not null and state in ('pending', 'running');
