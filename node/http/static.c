/* Files: the OHIF viewer's build under /viewer/ (its index.html re-rooted there, and an
 * app-config.js pointing at this node's /dicom-web), and the workspace pages (the files
 * of node/http/web: one HTML shell for /, /worklist, /dashboard and /audit, and its
 * scripts and style under /web/, all built only on /api). */
#include "node/http/internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_FILE_MAX (64u << 20)

static const struct {
    const char *ext, *type;
} mime[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".wasm", "application/wasm"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
    {".xml", "application/xml"},
    {".webapp", "application/json"},
    {".jsonc", "application/json"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof mime / sizeof mime[0]; i++)
        if (strcmp(dot, mime[i].ext) == 0)
            return mime[i].type;
    return "application/octet-stream";
}

/* The viewer's configuration: this node's DICOMweb, same origin, the viewer under
 * /viewer. The session cookie goes with every request. */
static const char app_config[] =
    "window.config = {\n"
    "  routerBasename: '/viewer',\n"
    "  extensions: [], modes: [],\n"
    /* No onboarding tour over the first image, no "investigational use" dialog: the
     * viewer opens straight onto the study (the mesh's own sign-in came first). */
    "  customizationService: { 'ohif.tours': { $set: [] } },\n"
    "  investigationalUseDialog: { option: 'never' },\n"
    "  showStudyList: true, maxNumberOfWebWorkers: 2,\n"
    "  showWarningMessageForCrossOrigin: false, showCPUFallbackMessage: false,\n"
    "  showLoadingIndicator: true, strictZSpacingForVolumeViewport: true,\n"
    "  defaultDataSourceName: 'pacsmesh',\n"
    "  dataSources: [{\n"
    "    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',\n"
    "    sourceName: 'pacsmesh',\n"
    "    configuration: {\n"
    "      friendlyName: 'pacsmesh node',\n"
    "      name: 'pacsmesh',\n"
    "      wadoUriRoot: window.location.origin + '/dicom-web',\n"
    "      qidoRoot: window.location.origin + '/dicom-web',\n"
    "      wadoRoot: window.location.origin + '/dicom-web',\n"
    "      qidoSupportsIncludeField: false,\n"
    "      imageRendering: 'wadors',\n"
    "      thumbnailRendering: 'wadors',\n"
    "      enableStudyLazyLoad: true,\n"
    "      supportsFuzzyMatching: false,\n"
    "      supportsWildcard: true,\n"
    "      staticWado: false,\n"
    "      singlepart: false,\n"
    "      bulkDataURI: { enabled: false },\n"
    "      omitQuotationForMultipartRequest: true,\n"
    "    },\n"
    "  }],\n"
    "};\n";

/* Reads a file of the viewer into memory (NULL if absent or too large). */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= STATIC_FILE_MAX &&
        (buf = malloc((size_t)st.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        } else {
            *len = got;
        }
    }
    close(fd);
    return buf;
}

/* index.html re-rooted under /viewer/: its absolute links and PUBLIC_URL. */
static enum MHD_Result send_index(pm_http_req *r)
{
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/index.html", r->srv->viewer_dir);
    char *html = slurp(path, &len);
    if (!html)
        return pm_http_error(r, 500, "the viewer's index.html cannot be read");
    html[len] = 0;
    size_t cap = len * 2 + 64, o = 0;
    char *out = malloc(cap);
    if (!out) {
        free(html);
        return pm_http_error(r, 500, "out of memory");
    }
    for (const char *p = html; *p;) {
        static const char *const from[] = {"src=\"/", "href=\"/", "PUBLIC_URL=\"/\""};
        static const char *const to[] = {"src=\"/viewer/", "href=\"/viewer/",
                                         "PUBLIC_URL=\"/viewer/\""};
        int hit = -1;
        for (int k = 0; k < 3 && hit < 0; k++)
            if (strncmp(p, from[k], strlen(from[k])) == 0)
                hit = k;
        if (hit >= 0 && o + strlen(to[hit]) < cap) {
            memcpy(out + o, to[hit], strlen(to[hit]));
            o += strlen(to[hit]);
            p += strlen(from[hit]);
        } else if (o + 1 < cap) {
            out[o++] = *p++;
        } else {
            break;
        }
    }
    free(html);
    struct MHD_Response *resp = MHD_create_response_from_buffer(o, out, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(out);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    return pm_http_queue(r, 200, resp);
}

static enum MHD_Result send_viewer(pm_http_req *r)
{
    if (!r->srv->viewer_dir)
        return pm_http_error(r, 404,
                             "the OHIF viewer is not installed on this node "
                             "(examples/install-deps.sh installs it)");
    char rel[PM_HTTP_PATH_MAX + 2] = "";
    size_t o = 0;
    for (int i = 1; i < r->nseg && o + 1 < sizeof rel; i++)
        o += (size_t)snprintf(rel + o, sizeof rel - o, "%s%s", i > 1 ? "/" : "", r->seg[i]);
    if (strcmp(rel, "app-config.js") == 0)
        return pm_http_send(r, 200, "text/javascript; charset=utf-8", app_config,
                            sizeof app_config - 1);
    if (strcmp(rel, "init-service-worker.js") == 0) /* no service worker: nothing cached */
        return pm_http_send(r, 200, "text/javascript; charset=utf-8", "", 0);
    /* The segments hold no "." or ".." (pm_http_path_split): rel stays in the dir. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", r->srv->viewer_dir, rel);
    struct stat st;
    if (!*rel || stat(path, &st) != 0 || !S_ISREG(st.st_mode) || strcmp(rel, "index.html") == 0)
        return send_index(r); /* the viewer's own routes: /viewer/viewer?StudyInstanceUIDs= */
    size_t len = 0;
    char *body = slurp(path, &len);
    if (!body)
        return pm_http_error(r, 404, "no such file");
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type_of(path));
    return pm_http_queue(r, 200, resp);
}

int pm_http_viewer_asset(pm_http_req *r)
{
    char path[4096];
    struct stat st;
    if (!r->srv->viewer_dir || r->nseg != 1 || !*r->seg[0] || strcmp(r->seg[0], "index.html") == 0)
        return 0;
    snprintf(path, sizeof path, "%s/%s", r->srv->viewer_dir, r->seg[0]);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A file of the viewer's build at the root. */
static enum MHD_Result send_asset(pm_http_req *r)
{
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", r->srv->viewer_dir, r->seg[0]);
    char *body = slurp(path, &len);
    if (!body)
        return pm_http_error(r, 404, "no such file");
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type_of(path));
    return pm_http_queue(r, 200, resp);
}

/* Where the workspace pages are: $PACSMESH_WEB_DIR, else the source tree's. */
static const char *web_dir(void)
{
    const char *env = getenv("PACSMESH_WEB_DIR");
    return env && *env ? env : PM_WEB_DIR;
}

/* The pages run only their own scripts and styles: a name or report that slipped past
 * the pages' text-only rendering still could not run as a script. */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

/* One file of the workspace pages: /web/NAME, or the HTML shell. */
static enum MHD_Result send_web(pm_http_req *r, const char *name)
{
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", web_dir(), name);
    char *body = slurp(path, &len);
    if (!body && strcmp(name, "index.html") == 0)
        return pm_http_error(r, 500, "the workspace pages are missing (see PACSMESH_WEB_DIR)");
    if (!body)
        return pm_http_error(r, 404, "no such page file: %.64s", name);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type_of(path));
    MHD_add_response_header(resp, "Content-Security-Policy", WEB_CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    return pm_http_queue(r, 200, resp);
}

enum MHD_Result pm_http_static(pm_http_req *r)
{
    if (r->auth != AUTH_NONE && pm_http_viewer_asset(r))
        return send_asset(r);
    if (r->nseg >= 1 && strcmp(r->seg[0], "viewer") == 0)
        return send_viewer(r);
    /* The segments hold no "." or "..", "/" or "\\" (pm_http_path_split). */
    if (r->nseg == 2 && strcmp(r->seg[0], "web") == 0)
        return send_web(r, r->seg[1]);
    if (r->nseg >= 1 && strcmp(r->seg[0], "web") == 0)
        return pm_http_error(r, 404, "no such page file");
    return send_web(r, "index.html");
}
