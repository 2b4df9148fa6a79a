/* DIR/run.lock: how a command tells whether a node runs on a directory, and how
 * `run` makes sure only one does.
 *
 * The running node holds an open file description lock (fcntl F_OFD_SETLK, write
 * lock) on the file for as long as it lives; the kernel drops it when the process
 * ends, kill -9 included, so a stale lock never blocks a start. Commands only probe
 * (F_OFD_GETLK), which takes no lock: a `status` polled in a loop can never make a
 * starting node think another one runs. */
#ifndef PM_RUN_LOCK_H
#define PM_RUN_LOCK_H

/* Takes the run lock of dir. Returns the descriptor that holds it (keep it open while
 * the node runs; closing it releases the lock), PM_E_BUSY if another process holds
 * it, or PM_E_IO if the file cannot be opened. */
int pm_run_lock_take(const char *dir);

/* 1 if some process holds dir's run lock (a node runs there), else 0. */
int pm_run_lock_held(const char *dir);

#endif
