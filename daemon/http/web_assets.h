/* web_assets.h - the dashboard's files, embedded in jazarid at build time
 * (daemon/http/embed.sh makes web_assets.c from daemon/http/web/): no
 * build step on the user's machine, nothing fetched at run time. */
#ifndef JZ_WEB_ASSETS_H
#define JZ_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path; /* "/app.js"; "/index.html" is served as "/" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_n_assets;

#endif
