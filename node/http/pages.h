/* The workspace pages served at / (pages.c): one HTML page and its script, built only
 * on /api: sign in; the worklist with claim, report and open-in-viewer; the
 * coordinator's turnaround dashboard; the auditor's search of the log; sign out. */
#ifndef PM_HTTP_PAGES_H
#define PM_HTTP_PAGES_H

extern const char pm_http_page_html[];
extern const char pm_http_page_js[];

#endif
