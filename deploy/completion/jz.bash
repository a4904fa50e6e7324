# jz.bash - bash completion for jz, the Jazari client.
#
# Source it (`. deploy/completion/jz.bash`), or install it as
# /usr/share/bash-completion/completions/jz (bash-completion loads it the
# first time jz is completed).
#
# Nothing here is a copy of jz's tables, so it stays true as jz changes:
# the commands come from `jz help`, each command's options and
# subcommands from `jz CMD --help` (a stable form: "  --name", "  --name
# VALUE", "  -f" under "options:" and "subcommands:"), job ids from
# `jz queue --noheader --format %i`, node names from `jz nodes`. Those
# that ask the daemon use the --socket, --server, --credentials given on
# the line being completed, and stay silent when it does not answer.

# The lines of section $1 ("options" or "subcommands") of `jz $2... --help`.
_jz_section()
{
    local want=$1
    shift
    "${_jz_bin:-jz}" "$@" --help 2>/dev/null |
        awk -v want="$want:" '$0 == want { on = 1; next } /^[^ ]/ { on = 0 } on && /^  [^ ]/ { print }'
}

# Runs jz with the connection options found on the line.
_jz_ask()
{
    timeout 3 "${_jz_bin:-jz}" "$@" "${_jz_conn[@]}" 2>/dev/null
}

_jz()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local _jz_bin=${COMP_WORDS[0]}
    local -a _jz_conn=()
    local cmd='' at=0 i w npos=0 dashdash=0 opts=''
    # The command, and the connection options anywhere before the cursor.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        --socket | --server | --credentials | --timeout)
            ((i + 1 < COMP_CWORD)) && _jz_conn+=("$w" "${COMP_WORDS[i + 1]}")
            ((i++))
            ;;
        -*) ;;
        *) [[ -z $cmd ]] && cmd=$w at=$i ;;
        esac
    done
    # A subcommand (jz token create): its own options.
    local subs='' sub=''
    if [[ -n $cmd ]]; then
        subs=$(_jz_section subcommands "$cmd")
        for ((i = at + 1; i < COMP_CWORD; i++)); do
            w=${COMP_WORDS[i]}
            [[ $w == -* ]] && continue
            grep -qxF -- "  $w" <<<"$subs" && sub=$w
            break
        done
        opts=$(_jz_section options "$cmd" ${sub:+"$sub"})
    fi
    # The positionals after it (not the values of its options), and `--`.
    for ((i = at + 1; at > 0 && i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == -- ]]; then
            dashdash=1
            break
        elif [[ $w == -* ]]; then
            grep -qxF -- "  $w VALUE" <<<"$opts" && ((i++))
        else
            ((npos++))
        fi
    done
    # After `--` (jz submit -- CMD) or a command (jz run CMD, jz alloc CMD): its words.
    if ((dashdash)) || [[ ($cmd == run || $cmd == alloc) && $npos -gt 0 ]]; then
        compopt -o default 2>/dev/null
        return 0
    fi
    case $prev in
    --socket | --credentials | --output | -o | --error | -e | --chdir | -D | --workdir)
        [[ $cmd == queue && $prev == -o ]] || {
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return 0
        }
        ;;
    esac
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "--json --socket --server --credentials --timeout --help --version" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$("$_jz_bin" help 2>/dev/null |
                awk '/^commands:/ { on = 1; next } /^$/ { on = 0 } on { print $1 }') help version" -- "$cur")
        fi
        return 0
    fi
    # Values from a fixed list (the accounting commands').
    local values=''
    case $cmd:$prev in
    usage:--by) values='user account model site day' ;;
    history:--state) values='COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL PREEMPTED' ;;
    esac
    if [[ -n $values ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
        return 0
    fi
    # The value of an option that takes one: nothing to offer but files.
    if [[ $prev == -* ]] && grep -qxF -- "  $prev VALUE" <<<"$opts"; then
        compopt -o default 2>/dev/null
        return 0
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(awk '{ print $1 }' <<<"$opts")" -- "$cur")
        return 0
    fi
    local words=''
    ((npos == 0)) && words=$(awk '{ print $1 }' <<<"$subs")
    case $cmd in
    show | logs | wait | requeue | eff)
        words+=" $(_jz_ask queue --all --noheader --format %i)"
        ;;
    cancel | release | hold | update)
        words+=" $(_jz_ask queue --noheader --format %i)"
        ;;
    attach)
        words+=" $(_jz_ask queue --state RUNNING --noheader --format %i)"
        ;;
    node)
        ((npos == 0)) || [[ $prev == revoke || $prev == check ]] && words+=" $(_jz_ask nodes | awk 'NR > 1 { print $1 }')"
        ;;
    drain | resume)
        ((npos == 0)) && words+=" $(_jz_ask nodes | awk 'NR > 1 { print $1 }')"
        ;;
    submit)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    run | alloc)
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
        return 0
        ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    return 0
}

complete -F _jz jz
