# shellcheck shell=sh disable=SC2034,SC3045
# (SC2034: the variables are for the scripts that source this; SC3045: busybox ash has read -t)
# The client side of the test bed's database stand-in (testbed/db/rudb.py, protocol RUDB/1),
# for busybox sh: sourced by entry, mysql and mysqldump. One connection per process: fd 3
# writes to the database, fd 4 reads from it, through busybox nc and two fifos. See
# testbed/db/README.md for the protocol.

RUDB_TIMEOUT=${RUDB_TIMEOUT:-10}
RUDB_CODE=""  # the error code of the last failure, as MySQL numbers them
RUDB_ERROR="" # its message
RUDB_ANSWER=""
RUDB_NC=""
# A write to a connection that is gone fails instead of killing the shell.
trap '' PIPE

# rudb_token TEXT: TEXT as one protocol word (printable, no space).
rudb_token() {
    printf '%s' "$1" | tr -c '!-~' '_'
}

rudb_fail() { # CODE MESSAGE
    RUDB_CODE=$1
    RUDB_ERROR=$2
}

# rudb_open HOST PORT USER PASSWORD [DB]: connects and authenticates (DB "" or "-": none).
rudb_open() {
    _rudb_dir=$(mktemp -d /tmp/rudb.XXXXXX) || { rudb_fail 2003 "mktemp failed"; return 1; }
    mkfifo "$_rudb_dir/in" "$_rudb_dir/out" || { rudb_fail 2003 "mkfifo failed"; return 1; }
    nc -w 5 "$1" "$2" <"$_rudb_dir/in" >"$_rudb_dir/out" 2>/dev/null &
    RUDB_NC=$!
    exec 3>"$_rudb_dir/in" 4<"$_rudb_dir/out"
    rm -rf "$_rudb_dir"
    if ! IFS= read -r -t "$RUDB_TIMEOUT" _rudb_greeting <&4; then
        rudb_fail 2003 "Can't connect to MySQL server on '$1:$2' (111)"
        rudb_close
        return 1
    fi
    case $_rudb_greeting in
        "RUDB 1 "*) ;;
        *)
            rudb_fail 2013 "Lost connection to MySQL server at '$1:$2': not the test bed's stand-in"
            rudb_close
            return 1
            ;;
    esac
    _rudb_hash=$(printf '%s' "$4" | sha256sum | cut -d' ' -f1)
    _rudb_proof=$(printf '%s%s' "${_rudb_greeting#RUDB 1 }" "$_rudb_hash" | sha256sum | cut -d' ' -f1)
    _rudb_db=${5:--}
    if ! rudb_ask "AUTH $(rudb_token "$3") $(rudb_token "$_rudb_db") $_rudb_proof"; then
        rudb_close
        return 1
    fi
}

# rudb_read: one answer line. "OK ..." -> status 0 and RUDB_ANSWER the rest; "ERR CODE
# MESSAGE" -> status 2 (RUDB_ANSWER keeps the line); another answer (WAIT, DATA) -> status 0
# and RUDB_ANSWER the line; none -> status 1.
rudb_read() {
    RUDB_ANSWER=""
    if ! IFS= read -r -t "$RUDB_TIMEOUT" RUDB_ANSWER <&4; then
        rudb_fail 2013 "Lost connection to MySQL server during query"
        return 1
    fi
    case $RUDB_ANSWER in
        OK) RUDB_ANSWER="" ;;
        "OK "*) RUDB_ANSWER=${RUDB_ANSWER#OK } ;;
        "ERR "*)
            _rudb_rest=${RUDB_ANSWER#ERR }
            rudb_fail "${_rudb_rest%% *}" "${_rudb_rest#* }"
            return 2
            ;;
    esac
    return 0
}

# rudb_ask LINE: sends LINE, then rudb_read.
rudb_ask() {
    if ! printf '%s\n' "$1" >&3 2>/dev/null; then
        rudb_fail 2013 "Lost connection to MySQL server during query"
        return 1
    fi
    rudb_read
}

# rudb_data: after an answer "DATA N", copies the N bytes that follow to stdout.
rudb_data() {
    _rudb_n=${RUDB_ANSWER#DATA }
    case $_rudb_n in
        '' | *[!0-9]*)
            rudb_fail 2027 "Malformed packet: $RUDB_ANSWER"
            return 1
            ;;
    esac
    [ "$_rudb_n" = 0 ] && return 0
    head -c "$_rudb_n" <&4
}

# rudb_exec FILE: runs the SQL in FILE; its output (SELECT rows) to stdout.
rudb_exec() {
    _rudb_n=$(wc -c <"$1") || return 1
    if ! { printf 'EXEC %s\n' "$((_rudb_n + 0))" && cat "$1"; } >&3 2>/dev/null; then
        rudb_fail 2013 "Lost connection to MySQL server during query"
        return 1
    fi
    rudb_read || return $?
    rudb_data
}

# rudb_close: ends the connection (with a BYE when it still stands).
rudb_close() {
    [ -n "$RUDB_NC" ] || return 0
    if printf 'BYE\n' >&3 2>/dev/null; then
        IFS= read -r -t 1 _rudb_bye <&4
    fi
    exec 3>&- 4<&-
    kill "$RUDB_NC" 2>/dev/null
    wait "$RUDB_NC" 2>/dev/null
    RUDB_NC=""
}

# ------------------------------------------------ what mysql and mysqldump share --
# The connection options of MySQL's clients. The password comes from MYSQL_PWD unless an
# option gives one: the stand-ins need no password in an argv, and neither do the real ones.
MYSQL_HOST=localhost
MYSQL_PORT=3306
MYSQL_USER=root
MYSQL_PASS=${MYSQL_PWD-}
MYSQL_TAKEN=0

# mysql_usage_error PROGRAM MESSAGE: as my_getopt says it, exit 7 (EXIT_UNKNOWN_OPTION).
mysql_usage_error() {
    echo "$1: [ERROR] $2" >&2
    exit 7
}

# mysql_option PROGRAM ARG [NEXT]: one connection option, or status 1 when ARG is not one;
# MYSQL_TAKEN says how many arguments it took.
mysql_option() {
    _prog=$1
    shift
    MYSQL_TAKEN=1
    case $1 in
        -h | --host | -P | --port | -u | --user)
            [ $# -ge 2 ] || mysql_usage_error "$_prog" "option '$1' requires an argument."
            MYSQL_TAKEN=2
            case $1 in
                -h | --host) MYSQL_HOST=$2 ;;
                -P | --port) MYSQL_PORT=$2 ;;
                *) MYSQL_USER=$2 ;;
            esac
            ;;
        --host=*) MYSQL_HOST=${1#*=} ;;
        --port=*) MYSQL_PORT=${1#*=} ;;
        --user=*) MYSQL_USER=${1#*=} ;;
        -h?*) MYSQL_HOST=${1#-h} ;;
        -P?*) MYSQL_PORT=${1#-P} ;;
        -u?*) MYSQL_USER=${1#-u} ;;
        -p?*) MYSQL_PASS=${1#-p} ;;
        --password=*) MYSQL_PASS=${1#*=} ;;
        -p | --password)
            # The real clients ask on the terminal; the stand-ins have none to ask on.
            echo "$_prog: [ERROR] -p without a value asks for the password on a terminal, which the stand-in cannot do; use MYSQL_PWD" >&2
            exit 1
            ;;
        --protocol=* | --default-character-set=* | --connect-timeout=* | --max-allowed-packet=* | \
            --compress | -C | --skip-ssl | --ssl-mode=* | --ssl=* | --no-defaults) ;;
        *) return 1 ;;
    esac
    case $MYSQL_PORT in
        '' | *[!0-9]*) mysql_usage_error "$_prog" "Invalid port '$MYSQL_PORT'" ;;
    esac
    return 0
}

# mysql_connect PROGRAM DB: connects as the options say (the database is for who may use
# it), introduced as kind=PROGRAM.
mysql_connect() {
    _host=$MYSQL_HOST
    case $_host in localhost) _host=127.0.0.1 ;; esac
    rudb_open "$_host" "$MYSQL_PORT" "$MYSQL_USER" "$MYSQL_PASS" "$2" || return 1
    rudb_ask "HELLO kind=$1 hostname=$(rudb_token "$(hostname)")" || {
        rudb_close
        return 1
    }
}

# mysql_sqlstate CODE: the SQLSTATE MySQL shows with an error code.
mysql_sqlstate() {
    case $1 in
        1045) echo 28000 ;;
        1044 | 1049 | 1064 | 1102 | 1470) echo 42000 ;;
        1046) echo 3D000 ;;
        1146 | 1051) echo 42S02 ;;
        1050) echo 42S01 ;;
        1007 | 1008) echo HY000 ;;
        *) echo HY000 ;;
    esac
}
