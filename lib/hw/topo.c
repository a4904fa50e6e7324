/* topo.c - the node's hardware picture from hwloc (this host, or an XML file
 * describing another machine), the GPUs (from the XML's PCI tree, or from
 * the driver through gpu.h) and the GPU x GPU link matrix in the vocabulary
 * of `nvidia-smi topo -m`. */
#include "topo.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/xmem.h"
#include "gpu.h"

#define TOPO__SUBSYS "topo"
#define TOPO__XML_MAX ((size_t)64 << 20) /* bytes */
#define TOPO__MAX_GPUS GPU_MAX_GPUS
#define TOPO__NVLINK1_BW 20000 /* MB/s per link, NVLink 1 (P100) */
#define TOPO__NVLINK_BW 25000  /* MB/s per link, NVLink 2 and later */
#define TOPO__PCI_VENDOR_NVIDIA 0x10de
#define TOPO__PCI_CLASS_DISPLAY 0x03 /* base class: 0300 VGA, 0302 3D */

/* --- small helpers ----------------------------------------------------------- */

static void topo__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void topo__err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A cpuset in list format ("0-7,16-23"), malloc'd; NULL for none. */
static char *topo__cpuset_str(hwloc_const_cpuset_t set)
{
    char *s = NULL;
    if (!set || hwloc_bitmap_list_asprintf(&s, set) < 0)
        return NULL;
    return s;
}

/* A PCI bus id packed so that integer order is bus id order. */
static uint64_t topo__bus_key(unsigned dom, unsigned bus, unsigned dev, unsigned fn)
{
    return (uint64_t)dom << 32 | (uint64_t)(bus & 0xff) << 16 | (uint64_t)(dev & 0xff) << 8 | (fn & 0xff);
}

/* Parses a PCI bus id into its key and fields (domain, bus, device, function). */
static int topo__bus_parse(const char *s, uint64_t *key, unsigned f[4])
{
    if (gpu_bus_id_parse(s, f) != 0)
        return -1;
    *key = topo__bus_key(f[0], f[1], f[2], f[3]);
    return 0;
}

/* --- the vocabulary ------------------------------------------------------------ */

static const char *const topo__kind_names[] = {"X", "NV", "PIX", "PXB", "PHB", "NODE", "SYS"};

/* The link between GPUs i and j; SYS (nothing better known) when either is
 * not a GPU of t. Allocates nothing. */
topo_link topo_link_get(const topo *t, size_t i, size_t j)
{
    topo_link none = {TOPO_LINK_SYS, 0};
    if (!t || !t->links || i >= t->n_gpus || j >= t->n_gpus)
        return none;
    return t->links[i * t->n_gpus + j];
}

/* Writes the name of l into dst (the caller's, len bytes, truncated to
 * fit) and returns dst. */
const char *topo_link_str(topo_link l, char *dst, size_t len)
{
    if (!dst || len == 0)
        return dst;
    if (l.kind == TOPO_LINK_NV)
        snprintf(dst, len, "NV%u", l.nvlinks);
    else if ((unsigned)l.kind <= (unsigned)TOPO_LINK_SYS)
        snprintf(dst, len, "%s", topo__kind_names[l.kind]);
    else
        snprintf(dst, len, "?");
    return dst;
}

/* Parses "X", "NV<n>" (n >= 1), "PIX", "PXB", "PHB", "NODE" or "SYS" into
 * *out (the caller's); 0, or -1 for anything else. Allocates nothing. */
int topo_link_parse(const char *s, topo_link *out)
{
    if (!s || !out)
        return -1;
    if (s[0] == 'N' && s[1] == 'V' && s[2] >= '0' && s[2] <= '9') {
        unsigned long long v = 0;
        for (const char *p = s + 2; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            v = v * 10 + (unsigned)(*p - '0');
            if (v > 0xffffffffULL)
                return -1;
        }
        if (v == 0)
            return -1;
        *out = (topo_link){TOPO_LINK_NV, (unsigned)v};
        return 0;
    }
    for (unsigned k = 0; k <= (unsigned)TOPO_LINK_SYS; k++) {
        if (k != TOPO_LINK_NV && strcmp(s, topo__kind_names[k]) == 0) {
            *out = (topo_link){(topo_link_kind)k, 0};
            return 0;
        }
    }
    return -1;
}

/* --- freeing --------------------------------------------------------------------- */

static void topo__gpu_clear(topo_gpu *g)
{
    free(g->uuid);
    free(g->model);
    free(g->pci_bus_id);
    free(g->cpuset);
}

/* Frees t and everything it owns (strings and arrays); NULL is fine. Used
 * for topos from topo_load and from topo_from_pb alike. */
void topo_free(topo *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->source);
    for (size_t i = 0; i < t->n_packages; i++)
        free(t->packages[i].cpuset);
    free(t->packages);
    for (size_t i = 0; i < t->n_numa; i++)
        free(t->numa[i].cpuset);
    free(t->numa);
    for (size_t i = 0; i < t->n_gpus; i++)
        topo__gpu_clear(&t->gpus[i]);
    free(t->gpus);
    free(t->links);
    free(t);
}

/* --- loading hwloc ---------------------------------------------------------------- */

/* Reads an XML file whole, refusing what is not a readable regular file of
 * at most TOPO__XML_MAX bytes. *out is malloc'd and NUL-terminated. */
static int topo__read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char *data = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        topo__err(err, errlen, "topology XML %s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        topo__err(err, errlen, "topology XML %s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        topo__err(err, errlen, "topology XML %s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > TOPO__XML_MAX) {
        topo__err(err, errlen, "topology XML %s: too large (%lld bytes; the limit is %zu MiB)", path,
                  (long long)st.st_size, TOPO__XML_MAX >> 20);
        goto fail;
    }
    /* Read to the end, even if the file grew since fstat, within the limit. */
    size_t cap = (size_t)st.st_size + 1;
    data = xcalloc(cap + 1, 1);
    for (;;) {
        if (n == cap) {
            if (cap > TOPO__XML_MAX) {
                topo__err(err, errlen, "topology XML %s: too large (the limit is %zu MiB)", path,
                          TOPO__XML_MAX >> 20);
                goto fail;
            }
            size_t ncap = cap * 2 > TOPO__XML_MAX + 1 ? TOPO__XML_MAX + 1 : cap * 2;
            char *nd = realloc(data, ncap + 1);
            if (!nd)
                abort();
            data = nd;
            cap = ncap;
        }
        ssize_t r = read(fd, data + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            topo__err(err, errlen, "topology XML %s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == 0) {
        topo__err(err, errlen, "topology XML %s: empty file", path);
        goto fail;
    }
    data[n] = '\0';
    close(fd);
    *out = data;
    *len = n;
    return 0;
fail:
    free(data);
    close(fd);
    return -1;
}

/* hwloc's PCI discovery is a plugin that loads libpciaccess and unloads it
 * with the topology; the library's global state then looks leaked (to
 * LeakSanitizer, failing the sanitizer runs). Holding the library for the
 * life of the process keeps that state where it belongs. */
static pthread_once_t topo__pciaccess_once = PTHREAD_ONCE_INIT;

static void topo__pin_pciaccess(void)
{
    (void)dlopen("libpciaccess.so.0", RTLD_NOW | RTLD_LOCAL); /* absent: nothing to pin */
}

/* Whether an XML export ends with its closing </topology> tag (then
 * whitespace only). */
static bool topo__xml_complete(const char *xml, size_t len)
{
    static const char tag[] = "</topology>";
    while (len > 0 &&
           (xml[len - 1] == ' ' || xml[len - 1] == '\n' || xml[len - 1] == '\r' || xml[len - 1] == '\t'))
        len--;
    return len >= sizeof tag - 1 && memcmp(xml + len - (sizeof tag - 1), tag, sizeof tag - 1) == 0;
}

/* A new hwloc topology with every I/O object kept: this host's, or the one
 * described by the XML at xml_path. */
static int topo__hwloc_load(const char *xml_path, hwloc_topology_t *out, char *err, size_t errlen)
{
    hwloc_topology_t hw = NULL;
    char *xml = NULL;
    size_t xml_len = 0;
    if (xml_path && topo__read_file(xml_path, &xml, &xml_len, err, errlen) != 0)
        return -1;
    if (!xml_path)
        pthread_once(&topo__pciaccess_once, topo__pin_pciaccess);
    if (xml && strstr(xml, "<topology") && !topo__xml_complete(xml, xml_len)) {
        /* A cut file (a copy that stopped, a full disk) is said as such,
         * and never reaches hwloc's parser, which leaks on it. */
        topo__err(err, errlen, "topology XML %s: ends before </topology>: the file is cut short", xml_path);
        free(xml);
        return -1;
    }
    if (hwloc_topology_init(&hw) != 0) {
        topo__err(err, errlen, "hwloc: cannot initialise a topology: %s", strerror(errno));
        goto fail;
    }
    hwloc_topology_set_io_types_filter(hw, HWLOC_TYPE_FILTER_KEEP_ALL);
    /* The buffer is parsed by hwloc_topology_load; the size counts the NUL. */
    if (xml && hwloc_topology_set_xmlbuffer(hw, xml, (int)xml_len + 1) != 0) {
        topo__err(err, errlen, "topology XML %s: not an hwloc XML topology", xml_path);
        goto fail;
    }
    if (hwloc_topology_load(hw) != 0) {
        if (xml_path)
            topo__err(err, errlen, "topology XML %s: not an hwloc XML topology", xml_path);
        else
            topo__err(err, errlen, "hwloc: cannot discover this host's topology: %s", strerror(errno));
        goto fail;
    }
    free(xml);
    *out = hw;
    return 0;
fail:
    if (hw)
        hwloc_topology_destroy(hw);
    free(xml);
    return -1;
}

/* --- CPUs and memory ----------------------------------------------------------------- */

static void topo__fill_cpus(hwloc_topology_t hw, topo *t)
{
    int np = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PACKAGE);
    int nn = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_NUMANODE);
    int nc = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_CORE);
    int npu = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PU);
    t->cores = nc > 0 ? (unsigned)nc : 0;
    t->pus = npu > 0 ? (unsigned)npu : 0;

    t->n_packages = np > 0 ? (size_t)np : 0;
    t->packages = xcalloc(t->n_packages, sizeof *t->packages);
    for (size_t i = 0; i < t->n_packages; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(hw, HWLOC_OBJ_PACKAGE, (unsigned)i);
        topo_package *p = &t->packages[i];
        if (!o)
            continue;
        int c = hwloc_get_nbobjs_inside_cpuset_by_type(hw, o->cpuset, HWLOC_OBJ_CORE);
        int u = hwloc_get_nbobjs_inside_cpuset_by_type(hw, o->cpuset, HWLOC_OBJ_PU);
        p->os_index = o->os_index;
        p->cores = c > 0 ? (unsigned)c : 0;
        p->pus = u > 0 ? (unsigned)u : 0;
        p->cpuset = topo__cpuset_str(o->cpuset);
    }

    t->n_numa = nn > 0 ? (size_t)nn : 0;
    t->numa = xcalloc(t->n_numa, sizeof *t->numa);
    for (size_t i = 0; i < t->n_numa; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, (unsigned)i);
        topo_numa *n = &t->numa[i];
        n->package = -1;
        if (!o)
            continue;
        hwloc_obj_t pk = hwloc_get_ancestor_obj_by_type(hw, HWLOC_OBJ_PACKAGE, o);
        n->os_index = o->os_index;
        n->package = pk && pk->logical_index < t->n_packages ? (int)pk->logical_index : -1;
        n->memory_bytes = o->attr ? o->attr->numanode.local_memory : 0;
        n->cpuset = topo__cpuset_str(o->cpuset);
    }
}

/* The name of the machine: the one asked for, else the host name the XML
 * (or hwloc) recorded, else this host's. */
static char *topo__name(hwloc_topology_t hw, const topo_load_opts *opts)
{
    if (opts->name && *opts->name)
        return xstrdup(opts->name);
    const char *h = hwloc_obj_get_info_by_name(hwloc_get_root_obj(hw), "HostName");
    if (h && *h)
        return xstrdup(h);
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        if (*host)
            return xstrdup(host);
    }
    return xstrdup("localhost");
}

/* --- GPUs ------------------------------------------------------------------------------ */

/* A GPU while the picture is assembled. */
typedef struct topo__gpu_src {
    topo_gpu g;      /* its facts; the strings move into the topo */
    hwloc_obj_t pci; /* its PCI device in hwloc's tree; NULL if hwloc lacks it */
    size_t drv;      /* its index in the driver's list (live probe) */
    int has_bus;     /* key is known */
    uint64_t key;    /* topo__bus_key of its PCI bus id */
} topo__gpu_src;

/* PCI bus id order; GPUs without a bus id last, in the driver's order. */
static int topo__gpu_src_cmp(const void *a, const void *b)
{
    const topo__gpu_src *x = a, *y = b;
    if (x->has_bus != y->has_bus)
        return x->has_bus ? -1 : 1;
    if (x->has_bus && x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->drv < y->drv ? -1 : x->drv > y->drv;
}

/* The GPU with this bus key, or -1. srcs are sorted. */
static long topo__gpu_by_key(const topo__gpu_src *srcs, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const topo__gpu_src *s = &srcs[mid];
        if (!s->has_bus || s->key > key)
            hi = mid;
        else if (s->key < key)
            lo = mid + 1;
        else
            return (long)mid;
    }
    return -1;
}

static int topo__is_osdev_named(hwloc_obj_t o, const char *prefix)
{
    return o->type == HWLOC_OBJ_OS_DEVICE && o->name && strncmp(o->name, prefix, strlen(prefix)) == 0;
}

/* A GPU: an NVIDIA display controller (VGA or 3D), or a PCI device that
 * carries a CUDA or NVML OS device. NVSwitches (class 0680) and other
 * vendors' displays are not GPUs. */
static int topo__is_gpu_pci(hwloc_obj_t o)
{
    if (o->type != HWLOC_OBJ_PCI_DEVICE)
        return 0;
    if (o->attr->pcidev.vendor_id == TOPO__PCI_VENDOR_NVIDIA &&
        (o->attr->pcidev.class_id >> 8) == TOPO__PCI_CLASS_DISPLAY)
        return 1;
    for (hwloc_obj_t c = o->io_first_child; c; c = c->next_sibling)
        if (topo__is_osdev_named(c, "cuda") || topo__is_osdev_named(c, "nvml"))
            return 1;
    return 0;
}

/* The facts the XML's OS devices tell about the GPU at PCI device o. */
static void topo__gpu_facts_xml(hwloc_obj_t o, topo_gpu *g)
{
    for (hwloc_obj_t c = o->io_first_child; c; c = c->next_sibling) {
        if (c->type != HWLOC_OBJ_OS_DEVICE)
            continue;
        const char *v;
        if (!g->model && (v = hwloc_obj_get_info_by_name(c, "GPUModel")) && *v)
            g->model = xstrdup(v);
        if (!g->uuid && (v = hwloc_obj_get_info_by_name(c, "NVIDIAUUID")) && *v)
            g->uuid = xstrdup(v);
        /* Other backends' spellings: any "...UUID" info holding a GPU UUID. */
        for (unsigned k = 0; !g->uuid && k < c->infos_count; k++) {
            const char *name = c->infos[k].name, *val = c->infos[k].value;
            size_t nl = name ? strlen(name) : 0;
            if (nl >= 4 && strcmp(name + nl - 4, "UUID") == 0 && val && strncmp(val, "GPU-", 4) == 0)
                g->uuid = xstrdup(val);
        }
        if (!g->memory_bytes && (v = hwloc_obj_get_info_by_name(c, "CUDAGlobalMemorySize"))) {
            char *end;
            errno = 0;
            unsigned long long kib = strtoull(v, &end, 10);
            if (errno == 0 && end != v && *end == '\0' && kib <= UINT64_MAX / 1024)
                g->memory_bytes = (uint64_t)kib * 1024;
        }
    }
}

/* The GPUs of an XML topology, in PCI bus id order. */
static int topo__gpus_xml(hwloc_topology_t hw, const char *path, topo__gpu_src **out, size_t *nout, char *err,
                          size_t errlen)
{
    size_t n = 0;
    hwloc_obj_t o = NULL;
    while ((o = hwloc_get_next_pcidev(hw, o)) != NULL)
        if (topo__is_gpu_pci(o))
            n++;
    if (n > TOPO__MAX_GPUS) {
        topo__err(err, errlen, "topology XML %s: %zu GPUs (the limit is %d)", path, n, TOPO__MAX_GPUS);
        return -1;
    }
    topo__gpu_src *s = xcalloc(n, sizeof *s);
    size_t i = 0;
    o = NULL;
    while ((o = hwloc_get_next_pcidev(hw, o)) != NULL && i < n) {
        if (!topo__is_gpu_pci(o))
            continue;
        const struct hwloc_pcidev_attr_s *a = &o->attr->pcidev;
        char id[GPU_BUS_ID_LEN];
        snprintf(id, sizeof id, "%04x:%02x:%02x.%x", a->domain, a->bus, a->dev, a->func);
        s[i].pci = o;
        s[i].drv = i;
        s[i].has_bus = 1;
        s[i].key = topo__bus_key(a->domain, a->bus, a->dev, a->func);
        s[i].g.pci_bus_id = xstrdup(id);
        topo__gpu_facts_xml(o, &s[i].g);
        i++;
    }
    qsort(s, n, sizeof *s, topo__gpu_src_cmp);
    *out = s;
    *nout = n;
    return 0;
}

/* The GPUs the driver reports, placed in hwloc's PCI tree by bus id. The
 * strings move from gl into the result. */
static void topo__gpus_live(hwloc_topology_t hw, gpu_list *gl, topo__gpu_src **out, size_t *nout)
{
    size_t n = gl->n;
    topo__gpu_src *s = xcalloc(n, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        gpu_info *d = &gl->gpus[i];
        unsigned f[4];
        s[i].drv = i;
        s[i].g.uuid = d->uuid;
        s[i].g.model = d->model;
        s[i].g.memory_bytes = d->memory_bytes;
        s[i].g.pci_bus_id = d->pci_bus_id;
        s[i].g.has_minor = d->minor >= 0;
        s[i].g.minor = d->minor >= 0 ? (unsigned)d->minor : 0;
        d->uuid = d->model = d->pci_bus_id = NULL;
        if (topo__bus_parse(s[i].g.pci_bus_id, &s[i].key, f) == 0) {
            s[i].has_bus = 1;
            s[i].pci = hwloc_get_pcidev_by_busid(hw, f[0], f[1], f[2], f[3]);
        }
    }
    qsort(s, n, sizeof *s, topo__gpu_src_cmp);
    *out = s;
    *nout = n;
}

/* NUMA node and cpuset of a GPU: those of the first non-I/O object above
 * its PCI device. */
static void topo__gpu_locality(hwloc_topology_t hw, topo__gpu_src *s)
{
    s->g.numa = -1;
    if (!s->pci)
        return;
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(hw, s->pci);
    if (!anc)
        return;
    if (anc->nodeset) {
        int first = hwloc_bitmap_first(anc->nodeset);
        s->g.numa = first >= 0 ? first : -1;
    }
    s->g.cpuset = topo__cpuset_str(anc->cpuset);
}

/* --- links through the PCIe tree ---------------------------------------------------------- */

static int topo__is_host_bridge(hwloc_obj_t o)
{
    return o->type == HWLOC_OBJ_BRIDGE && o->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_HOST;
}

static int topo__is_pci_bridge(hwloc_obj_t o)
{
    return o->type == HWLOC_OBJ_BRIDGE && o->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_PCI;
}

/* The PCIe switch a PCI-PCI bridge belongs to, named by its upstream port;
 * NULL for a root port (which belongs to the host bridge). In a chain of
 * PCI-PCI bridges below a host bridge, the first is a root port, then come
 * upstream and downstream ports in turn. */
static hwloc_obj_t topo__bridge_switch(hwloc_obj_t b)
{
    size_t above = 0;
    for (hwloc_obj_t p = b->parent; p && topo__is_pci_bridge(p); p = p->parent)
        above++;
    if (above == 0)
        return NULL;                  /* root port */
    return above % 2 ? b : b->parent; /* upstream port : downstream port */
}

static size_t topo__depth(hwloc_obj_t o)
{
    size_t d = 0;
    for (; o->parent; o = o->parent)
        d++;
    return d;
}

/* The lowest common ancestor of two objects (I/O objects included). */
static hwloc_obj_t topo__common_ancestor(hwloc_obj_t a, hwloc_obj_t b)
{
    size_t da = topo__depth(a), db = topo__depth(b);
    for (; da > db; da--)
        a = a->parent;
    for (; db > da; db--)
        b = b->parent;
    while (a != b) {
        a = a->parent;
        b = b->parent;
    }
    return a;
}

/* Notes the switches on the path from o up to and including top. Returns
 * the number of distinct switches seen so far, capped at 2. */
static int topo__path_switches(hwloc_obj_t o, hwloc_obj_t top, hwloc_obj_t *first, int seen)
{
    for (;; o = o->parent) {
        if (topo__is_pci_bridge(o)) {
            hwloc_obj_t sw = topo__bridge_switch(o);
            if (sw && !*first) {
                *first = sw;
                seen = 1;
            } else if (sw && sw != *first) {
                return 2;
            }
        }
        if (o == top)
            return seen;
    }
}

/* The link between two GPUs' PCI devices when no NVLink joins them. */
static topo_link_kind topo__pci_link(hwloc_topology_t hw, hwloc_obj_t a, hwloc_obj_t b)
{
    hwloc_obj_t lca = topo__common_ancestor(a, b);
    if (!hwloc_obj_type_is_io(lca->type)) {
        hwloc_obj_t na = hwloc_get_non_io_ancestor_obj(hw, a);
        hwloc_obj_t nb = hwloc_get_non_io_ancestor_obj(hw, b);
        if (na && nb && na->nodeset && nb->nodeset && hwloc_bitmap_isequal(na->nodeset, nb->nodeset))
            return TOPO_LINK_NODE;
        return TOPO_LINK_SYS;
    }
    if (topo__is_host_bridge(lca))
        return TOPO_LINK_PHB;
    hwloc_obj_t first = NULL;
    int seen = topo__path_switches(a, lca, &first, 0);
    if (seen < 2)
        seen = topo__path_switches(b, lca, &first, seen);
    return seen <= 1 ? TOPO_LINK_PIX : TOPO_LINK_PXB;
}

/* --- links through NVLink ----------------------------------------------------------------------- */

/* One GPU's NVLink bandwidth (or link count) to one NVSwitch. */
typedef struct topo__edge {
    uint64_t sw; /* the switch, as a key */
    size_t gpu;  /* index into the topo's GPUs */
    uint64_t bw; /* MB/s, or links when the unit is 1 */
} topo__edge;

typedef struct topo__edges {
    topo__edge *e;
    size_t n, cap;
} topo__edges;

static void topo__edges_add(topo__edges *es, uint64_t sw, size_t gpu, uint64_t bw)
{
    if (es->n == es->cap) {
        size_t ncap = es->cap ? es->cap * 2 : 64;
        topo__edge *ne = realloc(es->e, ncap * sizeof *ne);
        if (!ne)
            abort();
        es->e = ne;
        es->cap = ncap;
    }
    es->e[es->n++] = (topo__edge){sw, gpu, bw};
}

static int topo__edge_cmp(const void *a, const void *b)
{
    const topo__edge *x = a, *y = b;
    if (x->sw != y->sw)
        return x->sw < y->sw ? -1 : 1;
    return x->gpu < y->gpu ? -1 : x->gpu > y->gpu;
}

/* Bandwidth in links: rounded to the nearest, and at least one. */
static unsigned topo__links_of(uint64_t bw, uint64_t unit)
{
    if (bw == 0)
        return 0;
    uint64_t l = (bw + unit / 2) / unit;
    if (l == 0)
        l = 1;
    return l > 0xffffff ? 0xffffff : (unsigned)l;
}

/* Adds links to a pair, saturating (absurd inputs must not wrap to zero). */
static void topo__links_add(topo_link *l, unsigned more)
{
    l->nvlinks = l->nvlinks > UINT_MAX - more ? UINT_MAX : l->nvlinks + more;
}

/* Two GPUs joined directly: the larger of both directions is kept. */
static void topo__nv_direct(topo *t, size_t a, size_t b, unsigned links)
{
    size_t n = t->n_gpus;
    if (a == b || links == 0)
        return;
    if (t->links[a * n + b].nvlinks < links)
        t->links[a * n + b].nvlinks = links;
    if (t->links[b * n + a].nvlinks < links)
        t->links[b * n + a].nvlinks = links;
}

/* Adds the links through NVSwitches: two GPUs on one switch get the smaller
 * of their bandwidths to it, summed over the switches they share. */
static void topo__nv_switches(topo *t, topo__edges *es, uint64_t unit)
{
    size_t n = t->n_gpus;
    if (es->n == 0)
        return;
    qsort(es->e, es->n, sizeof *es->e, topo__edge_cmp);
    /* One edge per (switch, GPU): duplicates are the same links seen twice. */
    size_t m = 0;
    for (size_t i = 0; i < es->n; i++) {
        if (m > 0 && es->e[m - 1].sw == es->e[i].sw && es->e[m - 1].gpu == es->e[i].gpu) {
            if (es->e[m - 1].bw < es->e[i].bw)
                es->e[m - 1].bw = es->e[i].bw;
        } else {
            es->e[m++] = es->e[i];
        }
    }
    for (size_t lo = 0; lo < m;) {
        size_t hi = lo;
        while (hi < m && es->e[hi].sw == es->e[lo].sw)
            hi++;
        for (size_t x = lo; x < hi; x++) {
            for (size_t y = x + 1; y < hi; y++) {
                const topo__edge *ex = &es->e[x], *ey = &es->e[y];
                unsigned l = topo__links_of(ex->bw < ey->bw ? ex->bw : ey->bw, unit);
                topo__links_add(&t->links[ex->gpu * n + ey->gpu], l);
                topo__links_add(&t->links[ey->gpu * n + ex->gpu], l);
            }
        }
        lo = hi;
    }
}

/* What an object of the NVLinkBandwidth matrix is: a GPU (its index: the
 * PCI device's userdata points to its entry in srcs), an NVSwitch or other
 * I/O device (-1, with *sw naming it), or a CPU-side object to ignore (-2). */
static long topo__nv_role(hwloc_obj_t o, const topo__gpu_src *srcs, hwloc_obj_t *sw)
{
    if (!o || !hwloc_obj_type_is_io(o->type))
        return -2;
    hwloc_obj_t pci = o;
    while (pci && pci->type == HWLOC_OBJ_OS_DEVICE)
        pci = pci->parent;
    if (pci && pci->type == HWLOC_OBJ_PCI_DEVICE && pci->userdata)
        return (long)((const topo__gpu_src *)pci->userdata - srcs);
    *sw = pci && hwloc_obj_type_is_io(pci->type) ? pci : o;
    return -1;
}

/* One NVLinkBandwidth matrix with the role of each of its objects. */
typedef struct topo__nvmat {
    struct hwloc_distances_s *d;
    long *role;      /* topo__nv_role of each object */
    hwloc_obj_t *sw; /* the switch, where role is -1 */
} topo__nvmat;

/* The bandwidth of one NVLink in the XML's matrices: NVLink 1 (P100) has
 * 20000 MB/s links, later generations 25000 MB/s. */
static uint64_t topo__nv_unit(const topo *t, const topo__nvmat *m, unsigned nm)
{
    int all25 = 1, all20 = 1, any = 0;
    for (size_t i = 0; i < t->n_gpus; i++)
        if (t->gpus[i].model && strstr(t->gpus[i].model, "P100"))
            return TOPO__NVLINK1_BW;
    for (unsigned k = 0; k < nm; k++) {
        unsigned nb = m[k].d->nbobjs;
        for (unsigned i = 0; i < nb; i++) {
            for (unsigned j = 0; j < nb; j++) {
                long ri = m[k].role[i], rj = m[k].role[j];
                uint64_t v = m[k].d->values[(size_t)i * nb + j];
                /* GPU-GPU (two GPUs) and GPU-switch values only. */
                if (i == j || v == 0 || ri == -2 || rj == -2 || (ri < 0 && rj < 0) || ri == rj)
                    continue;
                any = 1;
                all25 &= v % TOPO__NVLINK_BW == 0;
                all20 &= v % TOPO__NVLINK1_BW == 0;
            }
        }
    }
    return any && !all25 && all20 ? TOPO__NVLINK1_BW : TOPO__NVLINK_BW;
}

/* One matrix's links: GPU pairs directly, GPU-switch pairs as edges. */
static void topo__nv_matrix(topo *t, const topo__nvmat *m, uint64_t unit, topo__edges *es)
{
    unsigned nb = m->d->nbobjs;
    for (unsigned i = 0; i < nb; i++) {
        long ri = m->role[i];
        if (ri < 0)
            continue; /* rows of GPUs only: each pair is seen from its GPU */
        for (unsigned j = 0; j < nb; j++) {
            long rj = m->role[j];
            uint64_t there = m->d->values[(size_t)i * nb + j];
            uint64_t back = m->d->values[(size_t)j * nb + i];
            uint64_t v = there > back ? there : back;
            if (i == j || v == 0)
                continue;
            if (rj >= 0)
                topo__nv_direct(t, (size_t)ri, (size_t)rj, topo__links_of(v, unit));
            else if (rj == -1)
                topo__edges_add(es, (uint64_t)(uintptr_t)m->sw[j], (size_t)ri, v);
        }
    }
}

/* NVLinks from the XML's "NVLinkBandwidth" matrices. */
static void topo__nvlinks_xml(hwloc_topology_t hw, topo *t, topo__gpu_src *srcs)
{
    unsigned nd = 0;
    struct hwloc_distances_s **d = NULL;
    topo__nvmat *m = NULL;
    topo__edges es = {NULL, 0, 0};
    if (t->n_gpus < 2 || hwloc_distances_get_by_name(hw, "NVLinkBandwidth", &nd, NULL, 0) != 0 || nd == 0)
        return;
    d = xcalloc(nd, sizeof(struct hwloc_distances_s *));
    m = xcalloc(nd, sizeof *m);
    if (hwloc_distances_get_by_name(hw, "NVLinkBandwidth", &nd, d, 0) != 0)
        goto out;
    for (size_t i = 0; i < t->n_gpus; i++)
        srcs[i].pci->userdata = &srcs[i];
    for (unsigned k = 0; k < nd; k++) {
        unsigned nb = d[k]->nbobjs;
        m[k].d = d[k];
        m[k].role = xcalloc(nb, sizeof *m[k].role);
        m[k].sw = xcalloc(nb, sizeof(hwloc_obj_t));
        for (unsigned i = 0; i < nb; i++)
            m[k].role[i] = topo__nv_role(d[k]->objs[i], srcs, &m[k].sw[i]);
    }
    uint64_t unit = topo__nv_unit(t, m, nd);
    for (unsigned k = 0; k < nd; k++)
        topo__nv_matrix(t, &m[k], unit, &es);
    topo__nv_switches(t, &es, unit);
out:
    for (unsigned k = 0; k < nd; k++) {
        free(m[k].role);
        free(m[k].sw);
        if (d[k])
            hwloc_distances_release(hw, d[k]);
    }
    for (size_t i = 0; i < t->n_gpus; i++)
        srcs[i].pci->userdata = NULL;
    free(m);
    free(d);
    free(es.e);
}

/* NVLinks from NVML: each active link ends at another GPU or at an
 * NVSwitch (whatever is not one of the GPUs). */
static void topo__nvlinks_live(topo *t, const topo__gpu_src *srcs, const gpu_list *gl)
{
    topo__edges es = {NULL, 0, 0};
    for (size_t a = 0; a < t->n_gpus; a++) {
        const gpu_info *d = &gl->gpus[srcs[a].drv];
        uint64_t keys[GPU_MAX_NVLINKS];
        unsigned counts[GPU_MAX_NVLINKS];
        size_t nk = 0;
        /* Links per far end. */
        for (unsigned l = 0; l < d->n_nvlinks && l < GPU_MAX_NVLINKS; l++) {
            uint64_t key;
            unsigned f[4];
            if (topo__bus_parse(d->nvlink_remote[l], &key, f) != 0)
                continue;
            size_t k = 0;
            while (k < nk && keys[k] != key)
                k++;
            if (k == nk) {
                keys[nk] = key;
                counts[nk++] = 0;
            }
            counts[k]++;
        }
        for (size_t k = 0; k < nk; k++) {
            long b = topo__gpu_by_key(srcs, t->n_gpus, keys[k]);
            if (b >= 0)
                topo__nv_direct(t, a, (size_t)b, counts[k]);
            else
                topo__edges_add(&es, keys[k], a, counts[k]);
        }
    }
    topo__nv_switches(t, &es, 1);
    free(es.e);
}

/* --- assembling ------------------------------------------------------------------------------------ */

/* Moves the GPUs into t and fills the link matrix: NVLink first, else the
 * PCIe path (SYS when hwloc does not know where a GPU is). */
static void topo__finish_gpus(hwloc_topology_t hw, topo *t, topo__gpu_src *srcs, size_t n, const gpu_list *gl)
{
    t->n_gpus = n;
    t->gpus = xcalloc(n, sizeof *t->gpus);
    t->links = xcalloc(n * n, sizeof *t->links);
    for (size_t i = 0; i < n; i++) {
        topo__gpu_locality(hw, &srcs[i]);
        t->gpus[i] = srcs[i].g;
        t->gpus[i].index = (unsigned)i;
        memset(&srcs[i].g, 0, sizeof srcs[i].g);
    }
    if (gl)
        topo__nvlinks_live(t, srcs, gl);
    else
        topo__nvlinks_xml(hw, t, srcs);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            topo_link *l = &t->links[i * n + j];
            if (i == j)
                *l = (topo_link){TOPO_LINK_X, 0};
            else if (l->nvlinks > 0)
                l->kind = TOPO_LINK_NV;
            else if (srcs[i].pci && srcs[j].pci)
                l->kind = topo__pci_link(hw, srcs[i].pci, srcs[j].pci);
            else
                l->kind = TOPO_LINK_SYS;
        }
    }
}

/* Loads the topology (an XML file, or this host with the driver's GPUs).
 * On success *out is a new topo the caller frees with topo_free; on failure
 * nothing is allocated, *out is untouched and err holds one line. */
int topo_load(const topo_load_opts *opts, topo **out, char *err, size_t errlen)
{
    hwloc_topology_t hw = NULL;
    topo *t = NULL;
    topo__gpu_src *srcs = NULL;
    size_t n = 0;
    gpu_list gl = {NULL, 0, 0, NULL};
    int live;
    if (!opts || !out) {
        topo__err(err, errlen, "topology: no options given");
        return -1;
    }
    live = opts->xml_path == NULL;
    if (topo__hwloc_load(opts->xml_path, &hw, err, errlen) != 0)
        return -1;
    t = xcalloc(1, sizeof *t);
    t->name = topo__name(hw, opts);
    t->source = xstrdup(live ? "hwloc" : opts->xml_path);
    topo__fill_cpus(hw, t);
    if (!live) {
        if (topo__gpus_xml(hw, opts->xml_path, &srcs, &n, err, errlen) != 0)
            goto fail;
        topo__finish_gpus(hw, t, srcs, n, NULL);
    } else if (opts->probe_gpus) {
        gpu_probe(NULL, &gl);
        topo__gpus_live(hw, &gl, &srcs, &n);
        topo__finish_gpus(hw, t, srcs, n, &gl);
    } else {
        topo__finish_gpus(hw, t, NULL, 0, NULL);
    }
    log_debug(TOPO__SUBSYS, "%s: %zu packages, %zu NUMA nodes, %u cores, %u PUs, %zu GPUs", t->source,
              t->n_packages, t->n_numa, t->cores, t->pus, t->n_gpus);
    free(srcs);
    gpu_list_free(&gl);
    hwloc_topology_destroy(hw);
    *out = t;
    return 0;
fail:
    for (size_t i = 0; srcs && i < n; i++)
        topo__gpu_clear(&srcs[i].g);
    free(srcs);
    gpu_list_free(&gl);
    topo_free(t);
    hwloc_topology_destroy(hw);
    return -1;
}
