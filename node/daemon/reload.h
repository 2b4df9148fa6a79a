/* SIGHUP: node.conf read again in the running node (docs/operations.md, Reloading).
 *
 * What new work reads takes effect at once: the worklist rules, due times, default
 * priority and lease (new announcements), and the log level. A file with an error is
 * logged (file, line, key) and the configuration in use is kept. Settings that the
 * running parts were started with (addresses, ports, the admin socket, the mesh, the
 * DICOM edge's AE lists, gossip and cache bounds) are logged by name as needing a
 * restart. Nothing is dropped: associations and connections go on. */
#ifndef PM_RELOAD_H
#define PM_RELOAD_H

struct daemon_state;

/* Reloads node.conf into d (main loop thread only). */
void pm_daemon_reload(struct daemon_state *d);

/* Frees the configurations reloads replaced (at shutdown, once no thread runs). */
void pm_daemon_reload_cleanup(struct daemon_state *d);

#endif
