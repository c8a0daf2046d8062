# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vaultctl_global_optspecs
    string join \n config= json no-progress v/verbose q/quiet identity= catalog= metrics-textfile= h/help V/version
end

function __fish_vaultctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vaultctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vaultctl_using_subcommand
    set -l cmd (__fish_vaultctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vaultctl -n "__fish_vaultctl_needs_command" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_needs_command" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_needs_command" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_needs_command" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_needs_command" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -s V -l version -d 'Print version'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "key" -d 'Manage keys'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "init" -d 'Create the repository on every configured target (idempotent)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "backup" -d 'Back up configured sources, files or a command\'s output'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "list" -d 'List backups (25 a page on a terminal); filter by source, kind, status, tag, tenant, dates'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "show" -d 'Everything about one backup: sizes, targets, engine facts, artifacts, row counts, checks, restores'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "restore" -d 'Restore a backup into a directory, to stdout, or into PostgreSQL'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "restores" -d 'The restore log: every restore, by whom, why and how it ended'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "verify" -d 'Check the repository: structure, and with --read-data every byte (no flag: the config\'s [verify] mode)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "prune" -d 'Apply retention and delete data no backup needs (safe while backups run)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "sync" -d 'Copy backups a target lacks from the other targets (catch-up after an outage)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "catalog" -d 'Manage the local catalog'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "wal" -d 'WAL archiving for point-in-time recovery (archive_command, restore_command, status)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "doctor" -d 'Check the setup: keys, targets (credentials, clock, permissions), PostgreSQL sources, schedules, space; exit 0 pass, 1 warning, 2 failure'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "status" -d 'Health dashboard; --check for monitoring (exit 0 ok, 1 warning, 2 critical)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "report" -d 'The dashboard as one self-contained HTML page (--html FILE) or JSON: health, alerts, sources, storage, charts'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "alerts" -d 'List, acknowledge and resolve alerts'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "dr" -d 'Disaster recovery: the runbook (plan), a verified restore (run), test restores (drill), history'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "schedule" -d 'Show schedules, print crontab lines, install systemd timers'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c vaultctl -n "__fish_vaultctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -f -a "generate" -d 'Write a new age identity (mode 0600) and print its public recipient'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and not __fish_seen_subcommand_from generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -s o -l output -d 'Where to write the identity; never overwritten' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Write a new age identity (mode 0600) and print its public recipient'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand init" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l tag -d 'Tag the backup (repeatable)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l note -d 'A note stored (encrypted) with the backup' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l tenant -d 'postgres sources: back up only this tenant\'s rows (repeatable; one artifact per tenant)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l at -d 'Back up later instead of now: a one-shot kept in the catalog and run by `vaultctl schedule run-due` (RFC 3339, a UTC `2026-12-01 02:00`, or a delay such as 2h)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l all -d 'Back up every configured source'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l all-tenants -d 'postgres sources: back up every tenant\'s rows, one artifact per tenant, from one snapshot'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -a "files" -d 'Back up files and directories (modes, owners, mtimes, symlinks)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -a "command" -d 'Back up a command\'s standard output; its exit status decides success'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and not __fish_seen_subcommand_from files command help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l name -d 'Source name to record (default: the first path\'s base name)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l tag -d 'Tag the backup (repeatable)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l note -d 'A note stored (encrypted) with the backup' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from files" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l name -d 'Source name to record' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l format -d '`stream` (restore with --stdout) or `tar` (stdout is a tar archive; restore with --to DIR)' -r -f -a "stream\t''
tar\t''"
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l tag -d 'Tag the backup (repeatable)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l note -d 'A note stored (encrypted) with the backup' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from command" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from help" -f -a "files" -d 'Back up files and directories (modes, owners, mtimes, symlinks)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from help" -f -a "command" -d 'Back up a command\'s standard output; its exit status decides success'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand backup; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l source -d 'Only backups of this source (a [[source]] name, or the --name of `backup files`/`backup command`)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l kind -d 'Only this kind: postgres (logical dumps and tenant exports), postgres-physical (base backups), files, command' -r -f -a "postgres\t''
postgres-physical\t''
files\t''
command\t''"
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l status -d 'running, completed or failed' -r -f -a "running\t''
completed\t''
failed\t''"
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l tag -d 'Only backups carrying this tag (`backup --tag`)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l tenant -d 'Only backups holding this tenant\'s rows: its tenant exports and the full dumps of a source with [source.tenants]' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l since -d 'Started at or after (RFC 3339, a date, or an age such as 7d)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l until -d 'Started before (RFC 3339, a date, or an age such as 7d)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l limit -d 'At most N rows a page (newest first); in JSON, at most N rows' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l page -d 'Which page (from 1) of --limit rows, or of 25 rows without --limit' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l restores -d 'The restore log instead of backups (the same as `vaultctl restores`)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand list" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand show" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l to -d 'Restore a files backup (or tar artifact) into this directory' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l target -d 'Read from this target only (default: the first, falling back to others)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l artifact -d 'Which artifact, when the backup holds several' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l type -d 'postgres: full (schema and data into a new or empty database), merge (missing rows into an existing one), or pitr (a physical backup plus archived WAL into --pgdata)' -r -f -a "full\t''
merge\t''
pitr\t''"
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l target-db -d 'postgres: the database to restore into, postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or PGPASSFILE, never in the URL)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l password-file -d 'A file holding the password of --target-db\'s role (else PGPASSWORD or PGPASSFILE; never in the URL)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l tenant -d 'postgres: restore only this tenant\'s rows (repeatable), from a tenant backup or a full dump' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l jobs -d 'postgres full and merge: connections loading data and building indexes (merge: staging rows) in parallel (default: restore_jobs in the config, else the number of cores)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l reason -d 'Why this restore is done (kept in the restore log)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l pg-bin-dir -d 'pitr: where pg_ctl and pg_controldata are (default: the source\'s config, else PATH); logical restores need no client programs' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l pgdata -d 'pitr: the new data directory (must be empty or absent)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l to-time -d 'pitr: recover up to this time (RFC 3339 with zone, or PostgreSQL\'s `2026-11-22 03:00:00+00`); with --tenant and --target-db: the time the tenants go back to' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l source -d 'pitr: pick the base backup of this postgres-physical source (the newest one consistent before --to-time)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l owner -d 'pitr, as root: the user that owns the data directory (or the tenant restore\'s sandbox) and runs the server (default: the owner of its parent)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l set -d 'pitr: an extra server setting for the restored cluster, NAME=VALUE (repeatable; e.g. port=5433)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l mode -d 'pitr with --tenant: merge (bring back rows deleted since, keep the others) or replace (the tenants\' rows exactly as at --to-time, in one transaction)' -r -f -a "merge\t''
replace\t''"
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l tenant-source -d 'pitr with --tenant: the postgres source whose [source.tenants] applies (default: the one whose database is --target-db\'s)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l work-dir -d 'pitr with --tenant: where the sandbox cluster goes (default: sandbox/ beside the catalog); the server\'s user must be able to enter it' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l stdout -d 'Write the backup\'s stream to stdout (a postgres backup: its SQL)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l force -d 'Write into a non-empty directory (files there are replaced)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l create -d 'postgres full: create the database when it does not exist'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l clean -d 'postgres full: replace a non-empty database (restored into a new one, swapped in only on success)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -s y -l yes -d 'Do not ask for confirmation before writing to a database'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l to-latest -d 'pitr: recover to the end of the archived WAL'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l start -d 'pitr: start the server with pg_ctl and wait until recovery has finished'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l dry-run -d 'pitr with --tenant: show per table the rows only at --to-time, only now, and changed; write nothing'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restore" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l limit -d 'At most N rows (newest first)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'One restore\'s full record: backup, target, who, why, duration, per-table rows, error'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from help" -f -a "show" -d 'One restore\'s full record: backup, target, who, why, duration, per-table rows, error'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand restores; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l target -d 'Check only this target' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l sample -d 'Download this percentage of packs, those read least recently first (repeated runs rotate through every pack)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l read-data -d 'Download every pack and check its bytes (and, with the identity, every blob and stream)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand verify" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l target -d 'Prune only this target (default: every target, each with its own policy)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l lock-wait -d 'How long to wait for running backups before giving up with exit 11' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l dry-run -d 'Show what would be removed and how much space it frees; change nothing'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand prune" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l from -d 'Copy from this target only (default: every target)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l to -d 'Copy to this target only (default: every target)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l dry-run -d 'Show what would be copied; change nothing'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand sync" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -f -a "rebuild" -d 'Rebuild the catalog\'s backup list and dedup index from the repository'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l target -d 'Read manifests from this target (default: the first that answers)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "rebuild" -d 'Rebuild the catalog\'s backup list and dedup index from the repository'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -f -a "push" -d 'Archive one WAL file: archive_command = \'vaultctl --config FILE wal push %p\''
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -f -a "fetch" -d 'Restore one WAL file: restore_command = \'vaultctl --config FILE wal fetch %f %p\' (exit 1 and "not in archive" when missing)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -f -a "status" -d 'Last archived segment and time per target, gaps, lag; exit 1 on a critical condition'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -f -a "sync" -d 'Copy WAL files a target lacks (e.g. after an outage) from the targets that have them'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -f -a "drain" -d 'The background worker of `wal push --async` (started by it)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and not __fish_seen_subcommand_from push fetch status sync drain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l source -d 'The postgres-physical source (needed when several are configured)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l async -d 'Archive ahead: a background worker pushes every WAL file PostgreSQL has ready, so later calls return at once'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from push" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l source -d 'The postgres-physical source (needed when several are configured)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l source -d 'The postgres-physical source (needed when several are configured)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l max-lag -d 'Archiving older than this is a critical condition (e.g. 15m, 1h)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l source -d 'The postgres-physical source (needed when several are configured)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l source -d 'The postgres-physical source (needed when several are configured)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l pg-wal -d 'PostgreSQL\'s pg_wal directory' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l skip -d 'A file the caller archives itself' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "push" -d 'Archive one WAL file: archive_command = \'vaultctl --config FILE wal push %p\''
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "fetch" -d 'Restore one WAL file: restore_command = \'vaultctl --config FILE wal fetch %f %p\' (exit 1 and "not in archive" when missing)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "status" -d 'Last archived segment and time per target, gaps, lag; exit 1 on a critical condition'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Copy WAL files a target lacks (e.g. after an outage) from the targets that have them'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "drain" -d 'The background worker of `wal push --async` (started by it)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l check -d 'Monitoring check: one summary line; exit 0 ok, 1 warning, 2 critical (Nagios convention)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l html -d 'Write the HTML dashboard to FILE (replaced atomically)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l days -d 'The charts\' window: the last DAYS days' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand report" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l status -d 'open (default), acknowledged, resolved, active (open and acknowledged) or all' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l severity -d 'Minimum severity: info, warning or critical' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l source -d 'Only alerts of this source' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l since -d 'Only alerts seen since T (RFC 3339, a date, or an age such as 7d)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -f -a "list" -d 'List alerts (the default): open ones, most severe first'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -f -a "ack" -d 'Acknowledge an alert: someone is on it (it stays active until the condition clears)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -f -a "resolve" -d 'Resolve an alert by hand (raised again if the condition persists)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and not __fish_seen_subcommand_from list ack resolve help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l status -d 'open (default), acknowledged, resolved, active (open and acknowledged) or all' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l severity -d 'Minimum severity: info, warning or critical' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l source -d 'Only alerts of this source' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l since -d 'Only alerts seen since T (RFC 3339, a date, or an age such as 7d)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l note -d 'A note stored with the alert' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from ack" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l note -d 'A note stored with the alert' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from resolve" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "list" -d 'List alerts (the default): open ones, most severe first'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "ack" -d 'Acknowledge an alert: someone is on it (it stays active until the condition clears)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "resolve" -d 'Resolve an alert by hand (raised again if the condition persists)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -f -a "plan" -d 'The DR runbook as checks and steps, each pass/fail/unknown (exit 1 when one DR needs fails)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -f -a "run" -d 'Restore a source\'s latest verified backup into a database and check it (records the RTO)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -f -a "drill" -d 'Test restore into a scratch database (created and dropped); alerts when it fails'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -f -a "history" -d 'DR runs and drills, newest first'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and not __fish_seen_subcommand_from plan run drill history help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l source -d 'Only this source (default: every postgres source in the config)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l target-db -d 'Also check that this database server is reachable (where `dr run` would restore)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l password-file -d 'A file holding the password of --target-db\'s role (else PGPASSWORD or PGPASSFILE; never in the URL)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l source -d 'The source whose backup to restore' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l target-db -d 'The database to restore into (created when missing; must be empty), postgresql://USER@HOST:PORT/DB' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l password-file -d 'A file holding the password of --target-db\'s role (else PGPASSWORD or PGPASSFILE; never in the URL)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l reason -d 'Why (kept in the restore log and the DR history)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l backup -d 'Backup id or prefix (default: the latest verified, else the latest completed)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l report -d 'Write a Markdown report of every step with timings' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l pg-bin-dir -d 'Ignored, accepted so that older scripts and timers still run: DR restores are logical, over the PostgreSQL protocol, and run no client program (psql was needed once)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -s y -l yes -d 'Do not ask for confirmation'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l count-rows -d 'Count every restored table\'s rows with count(*) (slower: reads the whole database again) instead of taking the rows the server acknowledged for each COPY'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l source -d 'The source whose latest backup to test' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l scratch-db -d 'The scratch database to create, restore into and drop (must not exist; default: the source\'s [source.drill] scratch_db, else vaultctl_drill_SOURCE on the source\'s server)' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l password-file -d 'A file holding the password of --scratch-db\'s role (else PGPASSWORD or PGPASSFILE; never in the URL)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l report -d 'Write a Markdown report of every step with timings' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l pg-bin-dir -d 'Ignored, accepted so that older scripts and timers still run: DR restores are logical, over the PostgreSQL protocol, and run no client program (psql was needed once)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l count-rows -d 'Count every restored table\'s rows with count(*) (slower: reads the whole database again) instead of taking the rows the server acknowledged for each COPY'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from drill" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l limit -d 'At most this many entries' -r
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l kind -d 'Only runs or only drills' -r -f -a "run\t''
drill\t''"
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from help" -f -a "plan" -d 'The DR runbook as checks and steps, each pass/fail/unknown (exit 1 when one DR needs fails)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from help" -f -a "run" -d 'Restore a source\'s latest verified backup into a database and check it (records the RTO)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from help" -f -a "drill" -d 'Test restore into a scratch database (created and dropped); alerts when it fails'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from help" -f -a "history" -d 'DR runs and drills, newest first'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand dr; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -f -a "show" -d 'Show each source\'s schedule and next run (UTC), and those of [verify] and [source.drill], or crontab lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -f -a "install" -d 'Write a .service and a .timer per scheduled source, verified target ([verify]) and drilled source ([source.drill]), and the one-shot runner\'s'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -f -a "run-due" -d 'Run the one-shot backups that are due (what the vaultctl-oneshot timer and the crontab line call)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -f -a "cancel" -d 'Cancel a pending one-shot backup (`backup --at`)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and not __fish_seen_subcommand_from show install run-due cancel help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l binary -d 'vaultctl binary for the generated command lines (default: this one)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l cron -d 'Print crontab lines instead of the table'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l one-shots -d 'Only the pending one-shot backups (`backup --at`)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l systemd -d 'Write systemd units into DIR (e.g. /etc/systemd/system)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l binary -d 'vaultctl binary for ExecStart= (default: this one)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from run-due" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show each source\'s schedule and next run (UTC), and those of [verify] and [source.drill], or crontab lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write a .service and a .timer per scheduled source, verified target ([verify]) and drilled source ([source.drill]), and the one-shot runner\'s'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "run-due" -d 'Run the one-shot backups that are due (what the vaultctl-oneshot timer and the crontab line call)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel a pending one-shot backup (`backup --at`)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -l config -d 'Config file (default: $VAULTCTL_CONFIG, $XDG_CONFIG_HOME/vaultctl/config.toml, /etc/vaultctl/config.toml)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -l identity -d 'Identity file for reading backups (overrides keys.identity_file)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -l catalog -d 'Catalog database (overrides `catalog` in the config)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -l metrics-textfile -d 'Prometheus textfile to write after state changes (overrides `metrics_textfile`)' -r -F
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -l json -d 'Machine-readable JSON on stdout'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -l no-progress -d 'No progress bars or periodic progress lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -s v -l verbose -d 'More log output (repeatable); RUST_LOG overrides'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -s q -l quiet -d 'Less output (repeatable)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand man" -s h -l help -d 'Print help'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "key" -d 'Manage keys'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "init" -d 'Create the repository on every configured target (idempotent)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "backup" -d 'Back up configured sources, files or a command\'s output'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "list" -d 'List backups (25 a page on a terminal); filter by source, kind, status, tag, tenant, dates'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "show" -d 'Everything about one backup: sizes, targets, engine facts, artifacts, row counts, checks, restores'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "restore" -d 'Restore a backup into a directory, to stdout, or into PostgreSQL'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "restores" -d 'The restore log: every restore, by whom, why and how it ended'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "verify" -d 'Check the repository: structure, and with --read-data every byte (no flag: the config\'s [verify] mode)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "prune" -d 'Apply retention and delete data no backup needs (safe while backups run)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "sync" -d 'Copy backups a target lacks from the other targets (catch-up after an outage)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "catalog" -d 'Manage the local catalog'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "wal" -d 'WAL archiving for point-in-time recovery (archive_command, restore_command, status)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "doctor" -d 'Check the setup: keys, targets (credentials, clock, permissions), PostgreSQL sources, schedules, space; exit 0 pass, 1 warning, 2 failure'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "status" -d 'Health dashboard; --check for monitoring (exit 0 ok, 1 warning, 2 critical)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "report" -d 'The dashboard as one self-contained HTML page (--html FILE) or JSON: health, alerts, sources, storage, charts'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "alerts" -d 'List, acknowledge and resolve alerts'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "dr" -d 'Disaster recovery: the runbook (plan), a verified restore (run), test restores (drill), history'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "schedule" -d 'Show schedules, print crontab lines, install systemd timers'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "completions" -d 'Print shell completions'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "man" -d 'Print the man page (roff)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and not __fish_seen_subcommand_from key init backup list show restore restores verify prune sync catalog wal doctor status report alerts dr schedule completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "generate" -d 'Write a new age identity (mode 0600) and print its public recipient'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from backup" -f -a "files" -d 'Back up files and directories (modes, owners, mtimes, symlinks)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from backup" -f -a "command" -d 'Back up a command\'s standard output; its exit status decides success'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from restores" -f -a "show" -d 'One restore\'s full record: backup, target, who, why, duration, per-table rows, error'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from catalog" -f -a "rebuild" -d 'Rebuild the catalog\'s backup list and dedup index from the repository'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "push" -d 'Archive one WAL file: archive_command = \'vaultctl --config FILE wal push %p\''
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "fetch" -d 'Restore one WAL file: restore_command = \'vaultctl --config FILE wal fetch %f %p\' (exit 1 and "not in archive" when missing)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "status" -d 'Last archived segment and time per target, gaps, lag; exit 1 on a critical condition'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "sync" -d 'Copy WAL files a target lacks (e.g. after an outage) from the targets that have them'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "drain" -d 'The background worker of `wal push --async` (started by it)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "list" -d 'List alerts (the default): open ones, most severe first'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "ack" -d 'Acknowledge an alert: someone is on it (it stays active until the condition clears)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "resolve" -d 'Resolve an alert by hand (raised again if the condition persists)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from dr" -f -a "plan" -d 'The DR runbook as checks and steps, each pass/fail/unknown (exit 1 when one DR needs fails)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from dr" -f -a "run" -d 'Restore a source\'s latest verified backup into a database and check it (records the RTO)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from dr" -f -a "drill" -d 'Test restore into a scratch database (created and dropped); alerts when it fails'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from dr" -f -a "history" -d 'DR runs and drills, newest first'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "show" -d 'Show each source\'s schedule and next run (UTC), and those of [verify] and [source.drill], or crontab lines'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "install" -d 'Write a .service and a .timer per scheduled source, verified target ([verify]) and drilled source ([source.drill]), and the one-shot runner\'s'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "run-due" -d 'Run the one-shot backups that are due (what the vaultctl-oneshot timer and the crontab line call)'
complete -c vaultctl -n "__fish_vaultctl_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "cancel" -d 'Cancel a pending one-shot backup (`backup --at`)'
