/* Shared by the files of the ingest path only (ingest.c takes instances in and writes
 * these local records; announce.c turns them into StudyAnnounced events). Not an API:
 * pm_ingest_announce is declared in ingest.h. */
#ifndef PM_INGEST_INTERNAL_H
#define PM_INGEST_INTERNAL_H

/* One instance's record: i/STUDY NUL SOP (a flagged second data set under the same SOP
 * Instance UID: NUL and 16 hex digits of its hash appended), holding a StudyAnnounced
 * with one series of that one instance. */
#define PM_INGEST_INSTANCE_PREFIX "i/"
/* An instance recorded but not yet announced: n/ and the rest of its i/ key, holding a
 * copy of its record; removed once an announcement lists it. */
#define PM_INGEST_PENDING_PREFIX "n/"
/* A study's announce mark: a/STUDY, holding a fresh random value each time an instance
 * of it is recorded. */
#define PM_INGEST_MARK_PREFIX "a/"

#endif
