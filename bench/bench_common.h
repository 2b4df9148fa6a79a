/* What the benchmark programs share: a fatal check, and a sample study event
 * (an announcement of a 4-instance CT, a claim, or a report) to fill logs with. */
#ifndef PM_BENCH_COMMON_H
#define PM_BENCH_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hash.h"
#include "proto/event.pb-c.h"

/* Benchmarks stop at the first failure, naming the program, file and line. */
#define DIE_IF(cond)                                                                               \
    do {                                                                                           \
        if (cond) {                                                                                \
            fprintf(stderr, "%s: %s:%d: %s\n", program_invocation_short_name, __FILE__, __LINE__,  \
                    #cond);                                                                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* A sample event and everything its body points into; lives as long as the body is used. */
typedef struct {
    Pm__EventBody body;
    Pm__StudyAnnounced sa;
    Pm__Series se, *sep;
    Pm__Instance in[4], *inp[4];
    uint8_t h[4][PM_HASH_BYTES];
    char sop[4][72];
    Pm__ItemClaimed ic;
    Pm__ReportSubmitted rs;
} bench_event;

/* kind 0: study uid announced for patient pid (4 instances of 512 KiB); 1: claimed;
 * 2: reported. uid and pid must outlive the event. Origin, seq, prev, clocks and mesh
 * are the caller's to fill. */
static inline void bench_sample_event(bench_event *e, int kind, const char *uid, const char *pid)
{
    memset(e, 0, sizeof *e);
    pm__event_body__init(&e->body);
    if (kind == 0) {
        pm__study_announced__init(&e->sa);
        pm__series__init(&e->se);
        for (int j = 0; j < 4; j++) {
            snprintf(e->sop[j], sizeof e->sop[j], "%s.1.%d", uid, j + 1);
            pm_hash(e->sop[j], strlen(e->sop[j]), e->h[j]);
            pm__instance__init(&e->in[j]);
            e->in[j].sop_instance_uid = e->sop[j];
            e->in[j].size = 524288;
            e->in[j].hash.data = e->h[j];
            e->in[j].hash.len = PM_HASH_BYTES;
            e->inp[j] = &e->in[j];
        }
        e->se.series_instance_uid = (char *)uid;
        e->se.modality = "CT";
        e->se.n_instances = 4;
        e->se.instances = e->inp;
        e->sep = &e->se;
        e->sa.study_instance_uid = (char *)uid;
        e->sa.patient_id = (char *)pid;
        e->sa.patient_name = "SYNTHETIC^BENCH";
        e->sa.study_description = "CT HEAD";
        e->sa.n_series = 1;
        e->sa.series = &e->sep;
        e->body.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
        e->body.study_announced = &e->sa;
    } else if (kind == 1) {
        pm__item_claimed__init(&e->ic);
        e->ic.study_instance_uid = (char *)uid;
        e->ic.reporter = "dr.bench";
        e->ic.lease_until_ms = 1800000000000ull;
        e->body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
        e->body.item_claimed = &e->ic;
    } else {
        pm__report_submitted__init(&e->rs);
        e->rs.study_instance_uid = (char *)uid;
        e->rs.reporter = "dr.bench";
        e->rs.text = "CT head: no acute intracranial abnormality.";
        e->body.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
        e->body.report_submitted = &e->rs;
    }
}

#endif
