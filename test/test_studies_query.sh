#!/bin/bash
# `studies` and `audit log --study` through the indexes, on one running node, driven
# through the CLI: accession exact (never a prefix match) and by wildcard, patient
# name case-insensitively by prefix, every modality of a study (CT behind OCT), and
# the audit log of one study equal to the full log filtered by hand.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wl_lib.sh"
wl_need_pydicom

mesh_create 1
node_start 1
S=$T/studies
ONE=$(new_uid) TWO=$(new_uid) THREE=$(new_uid)
import_study 1 "$S" "$ONE" OCT,CT EYE "EYE OCT AND CT"
import_study 1 "$S" "$TWO" CR CHEST "CHEST"
import_study 1 "$S" "$THREE" MR KNEE "KNEE"
acc_one=$(pmjson 1 studies -- "next(s['accession'] for s in d if s['study_uid'] == '$ONE')")
uids() { pmjson 1 studies "$@" -- '",".join(sorted(s["study_uid"] for s in d))'; }
sorted() { printf '%s\n' "$@" | sort | paste -sd,; }

log "1. accession: exact finds one study; a wildcard finds by prefix"
[ "$(uids --accession "$acc_one")" = "$ONE" ] || fail "--accession $acc_one: $(uids --accession "$acc_one")"
[ "$(uids --accession "${acc_one:0:4}")" = "" ] || fail "an accession prefix matched without a wildcard"
[ "$(uids --accession "ACC*")" = "$(sorted $ONE $TWO $THREE)" ] || fail "--accession 'ACC*'"

log "2. patient name: case-insensitive prefix"
[ "$(uids --name 'synthetic^test*')" = "$(sorted $ONE $TWO $THREE)" ] || fail "--name 'synthetic^test*'"
[ "$(uids --name 'NOBODY*')" = "" ] || fail "--name NOBODY* matched"

log "3. modality: every series counts (CT behind OCT)"
[ "$(uids --modality CT)" = "$ONE" ] || fail "--modality CT: $(uids --modality CT)"
[ "$(uids --modality 'C*')" = "$(sorted $ONE $TWO)" ] || fail "--modality 'C*'"

log "4. audit log --study: the study's own events, as the full log filtered"
study_log() { pmjson 1 audit log "$@" -- '[(e["origin"], e["seq"]) for e in d if e.get("study_uid") == "'"$TWO"'"]'; }
[ "$(study_log --study "$TWO")" = "$(study_log)" ] || fail "audit log --study differs from the filtered log"
[ "$(pmjson 1 audit log --study "$TWO" -- 'len(d)')" -ge 1 ] || fail "no events for $TWO"
exit 0
