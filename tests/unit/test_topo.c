/* test_topo.c - topologies from hwloc XML: every XML of tests/fixtures and of
 * tests/fixtures/hwloc against its hand-written .expect, the GPU and link
 * rules on small XMLs built here, the refusals, and the printed forms. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/hw/topo.h"
#include "common/buf.h"
#include "common/json.h"
#include "test.h"

/* --- helpers ------------------------------------------------------------------ */

static topo *load_xml(const char *path, char *err, size_t errlen)
{
    topo *t = NULL;
    topo_load_opts o = {.xml_path = path, .name = NULL, .probe_gpus = true};
    if (topo_load(&o, &t, err, errlen) != 0)
        return NULL;
    return t;
}

static char *link_str(const topo *t, size_t i, size_t j, char *s, size_t len)
{
    return (char *)topo_link_str(topo_link_get(t, i, j), s, len);
}

/* Writes text to a new temporary file; returns its path (static). */
static const char *write_tmp(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/jazari-test-topo-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return NULL;
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.data; /* owned by the caller now */
}

/* --- the .expect files ----------------------------------------------------------- */

#define EXP_FAIL(path, line, ...) test_fail((path), (line), __VA_ARGS__)

static void check_count(const char *path, int line, const char *key, const char *val, long long got)
{
    char *end;
    long long want = strtoll(val, &end, 10);
    if (end == val || *end != '\0')
        EXP_FAIL(path, line, "%s: not a number: '%s'", key, val);
    else if (want != got)
        EXP_FAIL(path, line, "%s: expected %lld, loaded %lld", key, want, got);
}

/* Splits s (modified) at blanks into at most max tokens. */
static size_t split(char *s, char **tok, size_t max)
{
    size_t n = 0;
    for (char *p = strtok(s, " \t"); p; p = strtok(NULL, " \t")) {
        if (n < max)
            tok[n] = p;
        n++;
    }
    return n;
}

#define MAX_TOK 8192

/* Compares the topology loaded from xml with the expectations in exp. */
static void check_expect(const char *xml, const char *exp)
{
    char err[512] = "";
    FILE *f = fopen(exp, "r");
    if (!f) {
        test_fail(exp, 0, "no expectations for %s: %s", xml, strerror(errno));
        return;
    }
    topo *t = load_xml(xml, err, sizeof err);
    if (!t) {
        test_fail(xml, 0, "cannot load: %s", err);
        fclose(f);
        return;
    }
    char **tok = calloc(MAX_TOK, sizeof *tok);
    char line[65536];
    int lineno = 0, in_links = 0, have_gpus = 0, have_pk = 0, have_numa = 0, have_gnuma = 0;
    long want_gpus = -1, row = 0;
    char s[16];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0')
            continue;
        if (in_links && row < want_gpus) {
            size_t n = split(p, tok, MAX_TOK);
            if ((long)n != want_gpus) {
                EXP_FAIL(exp, lineno, "links row %ld has %zu entries, not %ld", row, n, want_gpus);
            } else {
                for (size_t j = 0; j < n; j++) {
                    topo_link l;
                    if (topo_link_parse(tok[j], &l) != 0)
                        EXP_FAIL(exp, lineno, "links row %ld: bad entry '%s'", row, tok[j]);
                    else if ((size_t)row < t->n_gpus && j < t->n_gpus &&
                             strcmp(link_str(t, (size_t)row, j, s, sizeof s), tok[j]) != 0)
                        EXP_FAIL(exp, lineno, "link GPU%ld-GPU%zu: expected %s, loaded %s", row, j, tok[j],
                                 s);
                }
            }
            row++;
            continue;
        }
        char *key = p;
        char *rest = p + strcspn(p, " \t");
        if (*rest)
            *rest++ = '\0';
        rest += strspn(rest, " \t");
        size_t rl = strlen(rest);
        while (rl > 0 && (rest[rl - 1] == ' ' || rest[rl - 1] == '\t'))
            rest[--rl] = '\0';
        if (strcmp(key, "gpus") == 0) {
            have_gpus = 1;
            want_gpus = strtol(rest, NULL, 10);
            check_count(exp, lineno, key, rest, (long long)t->n_gpus);
        } else if (strcmp(key, "packages") == 0) {
            have_pk = 1;
            check_count(exp, lineno, key, rest, (long long)t->n_packages);
        } else if (strcmp(key, "numa_nodes") == 0) {
            have_numa = 1;
            check_count(exp, lineno, key, rest, (long long)t->n_numa);
        } else if (strcmp(key, "cores") == 0) {
            check_count(exp, lineno, key, rest, t->cores);
        } else if (strcmp(key, "pus") == 0) {
            check_count(exp, lineno, key, rest, t->pus);
        } else if (strcmp(key, "gpu_numa") == 0) {
            have_gnuma = 1;
            size_t n = split(rest, tok, MAX_TOK);
            if (n != t->n_gpus) {
                EXP_FAIL(exp, lineno, "gpu_numa lists %zu GPUs, loaded %zu", n, t->n_gpus);
            } else {
                for (size_t i = 0; i < n; i++)
                    if (strtol(tok[i], NULL, 10) != t->gpus[i].numa)
                        EXP_FAIL(exp, lineno, "GPU%zu NUMA: expected %s, loaded %d", i, tok[i],
                                 t->gpus[i].numa);
            }
        } else if (strcmp(key, "gpu_bus") == 0) {
            size_t n = split(rest, tok, MAX_TOK);
            if (n != t->n_gpus) {
                EXP_FAIL(exp, lineno, "gpu_bus lists %zu GPUs, loaded %zu", n, t->n_gpus);
            } else {
                for (size_t i = 0; i < n; i++) {
                    const char *got = t->gpus[i].pci_bus_id;
                    if (!got || strcmp(got, tok[i]) != 0)
                        EXP_FAIL(exp, lineno, "GPU%zu bus id: expected %s, loaded %s", i, tok[i],
                                 got ? got : "(null)");
                }
            }
        } else if (strcmp(key, "gpu_model") == 0) {
            char *end;
            long i = strtol(rest, &end, 10);
            char *model = end + strspn(end, " \t");
            if (end == rest || i < 0 || (size_t)i >= t->n_gpus) {
                EXP_FAIL(exp, lineno, "gpu_model: bad GPU index in '%s'", rest);
            } else {
                const char *got = t->gpus[i].model;
                if (!got || strcmp(got, model) != 0)
                    EXP_FAIL(exp, lineno, "GPU%ld model: expected '%s', loaded '%s'", i, model,
                             got ? got : "(null)");
            }
        } else if (strcmp(key, "links") == 0) {
            if (!have_gpus)
                EXP_FAIL(exp, lineno, "links before gpus");
            in_links = 1;
            row = 0;
        } else {
            EXP_FAIL(exp, lineno, "unknown key '%s'", key);
        }
    }
    if (!have_gpus || !have_pk || !have_numa)
        EXP_FAIL(exp, lineno, "gpus, packages and numa_nodes are required");
    if (want_gpus > 0 && !have_gnuma)
        EXP_FAIL(exp, lineno, "gpu_numa is required when there are GPUs");
    if (want_gpus > 0 && !in_links)
        EXP_FAIL(exp, lineno, "links is required when there are GPUs");
    if (in_links && row != want_gpus)
        EXP_FAIL(exp, lineno, "links has %ld rows, not %ld", row, want_gpus);

    /* Whatever the machine, both printed forms come out whole. */
    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, false);
    topo_to_json(t, &j);
    CHECK(b.len > 0 && b.data[0] == '{' && b.data[b.len - 1] == '}');
    buf_reset(&b);
    topo_print(t, &b);
    CHECK(strstr(buf_str(&b), "Machine ") != NULL);
    buf_free(&b);

    free(tok);
    fclose(f);
    topo_free(t);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks each XML of dir against its .expect: beside it (exp_dir NULL), or
 * in exp_dir under the same base name. Returns the number of XMLs. */
static int check_dir(const char *dir, const char *exp_dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        test_fail(dir, 0, "cannot open: %s", strerror(errno));
        return 0;
    }
    char *names[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (ends_with(e->d_name, ".xml") && n < 1024)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char xml[1024], exp[1024];
        size_t base = strlen(names[i]) - 4;
        snprintf(xml, sizeof xml, "%s/%s", dir, names[i]);
        snprintf(exp, sizeof exp, "%s/%.*s.expect", exp_dir ? exp_dir : dir, (int)base, names[i]);
        check_expect(xml, exp);
        free(names[i]);
    }
    return (int)n;
}

TEST(topo_hwloc_xmls_match_expect)
{
    CHECK(check_dir(test_hwloc_dir(), NULL) >= 6);
}

TEST(topo_fixture_xmls_match_expect)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/topologies", test_fixtures_dir());
    check_dir(dir, NULL); /* whatever is there; possibly none yet */
}

/* --- the vocabulary ------------------------------------------------------------------ */

TEST(topo_link_str_and_parse)
{
    char s[16];
    static const char *const good[] = {"X",   "NV1",  "NV18", "PIX",         "PXB",
                                       "PHB", "NODE", "SYS",  "NV4294967295"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        topo_link l = {TOPO_LINK_SYS, 0};
        CHECK_EQ_INT(topo_link_parse(good[i], &l), 0);
        CHECK_EQ_STR(topo_link_str(l, s, sizeof s), good[i]);
    }
    topo_link l;
    CHECK_EQ_INT(topo_link_parse("NV12", &l), 0);
    CHECK_EQ_INT(l.kind, TOPO_LINK_NV);
    CHECK_EQ_INT(l.nvlinks, 12);
    CHECK_EQ_INT(topo_link_parse("PIX", &l), 0);
    CHECK_EQ_INT(l.kind, TOPO_LINK_PIX);
    CHECK_EQ_INT(l.nvlinks, 0);
    static const char *const bad[] = {"",    "NV", "NV0",    "NV-1", "NV4294967296", "nv4",
                                      "pix", "X ", "NVLINK", "NV1x", "SOC"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ_INT(topo_link_parse(bad[i], &l), -1);
    CHECK_EQ_INT(topo_link_parse(NULL, &l), -1);
    /* A small buffer truncates, never overflows. */
    char tiny[4];
    topo_link big = {TOPO_LINK_NV, 123456};
    CHECK_EQ_STR(topo_link_str(big, tiny, sizeof tiny), "NV1");
    CHECK_EQ_STR(topo_link_str((topo_link){(topo_link_kind)42, 0}, s, sizeof s), "?");
    /* Out of range: no link better than SYS is claimed. */
    CHECK_EQ_INT(topo_link_get(NULL, 0, 0).kind, TOPO_LINK_SYS);
}

/* --- facts from the real machines' XMLs ------------------------------------------------------- */

static topo *load_hwloc(const char *name)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", test_hwloc_dir(), name);
    topo *t = load_xml(path, err, sizeof err);
    if (!t)
        test_fail(__FILE__, __LINE__, "%s: %s", path, err);
    return t;
}

TEST(topo_dgx2_facts)
{
    topo *t = load_hwloc("nvidiaDGX2.xml");
    REQUIRE(t);
    REQUIRE(t->n_gpus == 16);
    /* No HostName in this XML: this host's name. */
    char host[256] = "";
    gethostname(host, sizeof host);
    CHECK_EQ_STR(t->name, host);
    CHECK(ends_with(t->source, "nvidiaDGX2.xml"));
    CHECK_EQ_STR(t->gpus[0].uuid, "GPU-d3977428-7a30-086b-2e20-5c1eeed647c6");
    CHECK_EQ_STR(t->gpus[15].uuid, "GPU-bb4648d3-e72b-4bac-a32f-4c9f3e4eb547");
    CHECK_EQ_STR(t->gpus[8].pci_bus_id, "0000:b7:00.0");
    CHECK_EQ_INT(t->gpus[0].memory_bytes, 0); /* NVML in hwloc tells no memory */
    CHECK_EQ_STR(t->gpus[0].cpuset, "0-1");
    CHECK_EQ_STR(t->gpus[8].cpuset, "24-25");
    CHECK_EQ_INT(t->gpus[8].numa, 1);
    REQUIRE(t->n_packages == 2 && t->n_numa == 2);
    CHECK_EQ_INT(t->packages[1].os_index, 1);
    CHECK_EQ_INT(t->packages[1].cores, 2);
    CHECK_EQ_INT(t->packages[1].pus, 2);
    CHECK_EQ_STR(t->packages[1].cpuset, "24-25");
    CHECK_EQ_INT(t->numa[0].memory_bytes, 810234351616LL);
    CHECK_EQ_INT(t->numa[1].package, 1);
    CHECK_EQ_STR(t->numa[1].cpuset, "24-25");

    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, false);
    topo_to_json(t, &j);
    const char *js = buf_str(&b);
    CHECK(strstr(js, "\"packages\":2,") != NULL);
    CHECK(strstr(js, "{\"os_index\":0,\"memory_bytes\":810234351616,\"cpuset\":\"0-1\",\"package\":0}") !=
          NULL);
    CHECK(strstr(js, "{\"index\":0,\"uuid\":\"GPU-d3977428-7a30-086b-2e20-5c1eeed647c6\","
                     "\"model\":\"Tesla V100-SXM3-32GB-H\",\"memory_bytes\":null,"
                     "\"pci_bus_id\":\"0000:34:00.0\",\"numa\":0,\"cpuset\":\"0-1\"}") != NULL);
    CHECK(strstr(js, "\"gpu_links\":[[\"X\",\"NV6\",") != NULL);
    CHECK(strstr(js, "\"cores\":4,\"pus\":4,") != NULL);
    buf_reset(&b);

    topo_print(t, &b);
    const char *txt = buf_str(&b);
    CHECK(strstr(txt, "Package P#1: 2 cores, 2 PUs, cpuset 24-25") != NULL);
    CHECK(strstr(txt, "NUMANode P#0: 754.6 GiB, cpuset 0-1") != NULL);
    CHECK(strstr(txt, "GPU0 0000:34:00.0 Tesla V100-SXM3-32GB-H, memory unknown") != NULL);
    CHECK(strstr(txt, "CPU Affinity") != NULL);
    CHECK(strstr(txt, "Legend:") != NULL);
    /* GPU8 is listed under NUMA node 1, after it. */
    const char *n1 = strstr(txt, "NUMANode P#1");
    CHECK(n1 && strstr(n1, "GPU8 0000:b7:00.0") != NULL);
    buf_free(&b);
    topo_free(t);
}

TEST(topo_power8_and_conan_facts)
{
    topo *t = load_hwloc("power8gpudistances.xml");
    REQUIRE(t);
    CHECK_EQ_STR(t->name, "drac-12.grenoble.grid5000.fr");
    REQUIRE(t->n_gpus == 4);
    CHECK_EQ_INT(t->gpus[2].memory_bytes, 16671616LL * 1024);
    CHECK_EQ_STR(t->gpus[2].uuid, "GPU-ea919830-8251-6a30-e379-daeb01448779");
    CHECK_EQ_INT(topo_link_get(t, 0, 1).nvlinks, 2);
    topo_free(t);

    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/32em64t-2n8c2t-pci-normalio.xml", test_hwloc_dir());
    topo_load_opts o = {.xml_path = path, .name = "renamed", .probe_gpus = true};
    t = NULL;
    REQUIRE(topo_load(&o, &t, err, sizeof err) == 0);
    CHECK_EQ_STR(t->name, "renamed");
    topo_free(t);
    t = load_hwloc("32em64t-2n8c2t-pci-normalio.xml");
    REQUIRE(t);
    CHECK_EQ_STR(t->name, "conan");
    REQUIRE(t->n_gpus == 3);
    CHECK(t->gpus[0].uuid == NULL && t->gpus[0].model == NULL);
    CHECK_EQ_STR(t->gpus[2].model, "Tesla K40m");
    CHECK_EQ_INT(t->gpus[2].memory_bytes, 11796032LL * 1024);
    CHECK_EQ_STR(t->gpus[1].cpuset, "8-15,24-31");
    topo_free(t);
}

/* The DGX-2 without its NVLink matrix: the links come from its PCIe tree. */
TEST(topo_dgx2_pcie_only)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/nvidiaDGX2.xml", test_hwloc_dir());
    char *x = read_all(path, &len);
    REQUIRE(x);
    char *a = strstr(x, "<distances2hetero");
    char *b = a ? strstr(a, "</distances2hetero>") : NULL;
    REQUIRE(a && b);
    b += strlen("</distances2hetero>");
    memmove(a, b, strlen(b) + 1);
    const char *tmp = write_tmp(x, strlen(x));
    free(x);
    REQUIRE(tmp);
    char err[512] = "";
    topo *t = load_xml(tmp, err, sizeof err);
    unlink(tmp);
    REQUIRE(t);
    REQUIRE(t->n_gpus == 16);
    char s[16];
    /* 34 and 36 share the last PLX switch (upstream port 32:00.0). */
    CHECK_EQ_STR(link_str(t, 0, 1, s, sizeof s), "PIX");
    CHECK_EQ_STR(link_str(t, 2, 3, s, sizeof s), "PIX");
    /* 34 and 39: three switches (2c, 32, 37) between them. */
    CHECK_EQ_STR(link_str(t, 0, 2, s, sizeof s), "PXB");
    CHECK_EQ_STR(link_str(t, 1, 3, s, sizeof s), "PXB");
    /* Different host bridges of package 0. */
    CHECK_EQ_STR(link_str(t, 0, 4, s, sizeof s), "NODE");
    CHECK_EQ_STR(link_str(t, 8, 12, s, sizeof s), "NODE");
    CHECK_EQ_STR(link_str(t, 0, 8, s, sizeof s), "SYS");
    CHECK_EQ_STR(link_str(t, 15, 0, s, sizeof s), "SYS");
    for (size_t i = 0; i < 16; i++)
        for (size_t j = 0; j < 16; j++)
            CHECK_EQ_INT(topo_link_get(t, i, j).kind, topo_link_get(t, j, i).kind);
    topo_free(t);
}

/* --- small XMLs built here ----------------------------------------------------------------- */

static void xml_pcidev(buf *x, int gp, const char *busid, const char *type)
{
    buf_printf(
        x, "<object type=\"PCIDev\" gp_index=\"%d\" pci_busid=\"%s\" pci_type=\"%s\" pci_link_speed=\"0.0\"",
        gp, busid, type);
}

static void xml_bridge(buf *x, int gp, const char *busid, const char *range)
{
    buf_printf(x,
               "<object type=\"Bridge\" gp_index=\"%d\" bridge_type=\"1-1\" depth=\"0\" bridge_pci=\"%s\" "
               "pci_busid=\"%s\" pci_type=\"0604 [8086:2030] [0000:0000] 04\" pci_link_speed=\"0.0\">\n",
               gp, range, busid);
}

static void xml_host_bridge(buf *x, int gp, const char *range)
{
    buf_printf(x,
               "<object type=\"Bridge\" gp_index=\"%d\" bridge_type=\"0-1\" depth=\"0\" bridge_pci=\"%s\">\n",
               gp, range);
}

static void xml_package(buf *x, int pk, int gp)
{
    unsigned set = 1u << pk;
    buf_printf(
        x,
        "<object type=\"Package\" os_index=\"%d\" cpuset=\"0x%08x\" complete_cpuset=\"0x%08x\" "
        "nodeset=\"0x%08x\" complete_nodeset=\"0x%08x\" gp_index=\"%d\">\n"
        "<object type=\"NUMANode\" os_index=\"%d\" cpuset=\"0x%08x\" complete_cpuset=\"0x%08x\" "
        "nodeset=\"0x%08x\" complete_nodeset=\"0x%08x\" gp_index=\"%d\" local_memory=\"1073741824\"/>\n"
        "<object type=\"Core\" os_index=\"%d\" cpuset=\"0x%08x\" complete_cpuset=\"0x%08x\" "
        "nodeset=\"0x%08x\" complete_nodeset=\"0x%08x\" gp_index=\"%d\">\n"
        "<object type=\"PU\" os_index=\"%d\" cpuset=\"0x%08x\" complete_cpuset=\"0x%08x\" "
        "nodeset=\"0x%08x\" complete_nodeset=\"0x%08x\" gp_index=\"%d\"/>\n</object>\n",
        pk, set, set, set, set, gp, pk, set, set, set, set, gp + 1, pk, set, set, set, set, gp + 2, pk, set,
        set, set, set, gp + 3);
}

static void xml_begin(buf *x)
{
    buf_puts(x,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
             "<topology version=\"2.0\">\n"
             "<object type=\"Machine\" os_index=\"0\" cpuset=\"0x00000003\" complete_cpuset=\"0x00000003\" "
             "allowed_cpuset=\"0x00000003\" nodeset=\"0x00000003\" complete_nodeset=\"0x00000003\" "
             "allowed_nodeset=\"0x00000003\" gp_index=\"1\">\n"
             "<info name=\"HostName\" value=\"synthetic\"/>\n");
}

/* <tag length="N">content</tag>, as hwloc writes it. */
static void xml_content(buf *x, const char *tag, const char *content)
{
    buf_printf(x, "<%s length=\"%zu\">%s</%s>\n", tag, strlen(content), content, tag);
}

/* Six GPUs A-F (bus order) around one host's PCIe tree:
 *   package 0, host bridge 10: root port 00:01.0 - switch (upstream 01:00.0)
 *     - downstream 02:00.0 - A 03:00.0 (NVIDIA 3D, with nvml0)
 *     - downstream 02:01.0 - B 04:00.0 (vendor 1234, class 0380, with cuda1)
 *     - downstream 02:02.0 - switch (upstream 05:00.0) - downstream 06:00.0 - C 07:00.0
 *   root port 00:02.0 - NVSwitch 08:00.0 (0680, not a GPU); Matrox VGA 00:1f.0
 *   package 0, host bridge 30: root port 10:01.0 - D 11:00.0 (NVIDIA VGA 0300)
 *   package 1, host bridge 50: root ports 20:01.0 - E 21:00.0, 20:02.0 - F 22:00.0
 * NVLinkBandwidth: A(nvml0)-E direct ab, C-switch cs, F-switch fs, plus
 * GPU-Package entries to ignore. */
static char *synthetic_xml(unsigned long ab, unsigned long cs, unsigned long fs)
{
    buf x = BUF_INIT;
    xml_begin(&x);
    xml_package(&x, 0, 2);
    xml_host_bridge(&x, 10, "0000:[00-0f]");
    xml_bridge(&x, 11, "0000:00:01.0", "0000:[01-07]");
    xml_bridge(&x, 12, "0000:01:00.0", "0000:[02-07]");
    xml_bridge(&x, 13, "0000:02:00.0", "0000:[03-03]");
    xml_pcidev(&x, 14, "0000:03:00.0", "0302 [10de:2330] [10de:16c1] a1");
    buf_puts(&x, ">\n<object type=\"OSDev\" gp_index=\"15\" name=\"nvml0\" osdev_type=\"1\">\n"
                 "<info name=\"GPUModel\" value=\"NVIDIA H100 80GB HBM3\"/>\n"
                 "<info name=\"NVIDIAUUID\" value=\"GPU-aaaaaaaa-0000-0000-0000-000000000000\"/>\n"
                 "</object>\n</object>\n</object>\n");
    xml_bridge(&x, 16, "0000:02:01.0", "0000:[04-04]");
    xml_pcidev(&x, 17, "0000:04:00.0", "0380 [1234:5678] [1234:0000] 00");
    buf_puts(&x,
             ">\n<object type=\"OSDev\" gp_index=\"18\" name=\"cuda1\" subtype=\"CUDA\" osdev_type=\"5\">\n"
             "<info name=\"GPUModel\" value=\"Odd GPU\"/>\n"
             "<info name=\"CUDAUUID\" value=\"GPU-bbbbbbbb-0000-0000-0000-000000000000\"/>\n"
             "<info name=\"CUDAGlobalMemorySize\" value=\"1024\"/>\n"
             "</object>\n</object>\n</object>\n");
    xml_bridge(&x, 19, "0000:02:02.0", "0000:[05-07]");
    xml_bridge(&x, 20, "0000:05:00.0", "0000:[06-07]");
    xml_bridge(&x, 21, "0000:06:00.0", "0000:[07-07]");
    xml_pcidev(&x, 22, "0000:07:00.0", "0302 [10de:2330] [10de:16c1] a1");
    buf_puts(&x, "/>\n</object>\n</object>\n</object>\n"); /* 21, 20, 19 */
    buf_puts(&x, "</object>\n</object>\n");                /* 12, 11 */
    xml_bridge(&x, 23, "0000:00:02.0", "0000:[08-08]");
    xml_pcidev(&x, 24, "0000:08:00.0", "0680 [10de:22a3] [10de:0000] a1");
    buf_puts(&x, "/>\n</object>\n");
    xml_pcidev(&x, 25, "0000:00:1f.0", "0300 [102b:0534] [0000:0000] 00");
    buf_puts(&x, "/>\n</object>\n"); /* host bridge 10 */
    xml_host_bridge(&x, 30, "0000:[10-1f]");
    xml_bridge(&x, 31, "0000:10:01.0", "0000:[11-11]");
    xml_pcidev(&x, 32, "0000:11:00.0", "0300 [10de:1eb8] [10de:12a2] a1");
    buf_puts(&x, "/>\n</object>\n</object>\n</object>\n"); /* 31, 30, package 0 */
    xml_package(&x, 1, 40);
    xml_host_bridge(&x, 50, "0000:[20-2f]");
    xml_bridge(&x, 51, "0000:20:01.0", "0000:[21-21]");
    xml_pcidev(&x, 52, "0000:21:00.0", "0302 [10de:2330] [10de:16c1] a1");
    buf_puts(&x, "/>\n</object>\n");
    xml_bridge(&x, 53, "0000:20:02.0", "0000:[22-22]");
    xml_pcidev(&x, 54, "0000:22:00.0", "0302 [10de:2330] [10de:16c1] a1");
    buf_puts(&x, "/>\n</object>\n</object>\n</object>\n</object>\n"); /* 53, 50, package 1, machine */

    /* Objects: A (OSDev 15), E (PCIDev 52), C (PCIDev 22), F (PCIDev 54),
     * the NVSwitch (PCIDev 24), Package 0 (gp 2). */
    unsigned long v[6][6] = {{0}};
    v[0][1] = v[1][0] = ab;
    v[2][4] = v[4][2] = cs;
    v[3][4] = v[4][3] = fs;
    v[0][5] = v[5][0] = 40000; /* GPU <-> CPU: ignored */
    for (int i = 0; i < 6; i++)
        v[i][i] = 1000000; /* ignored */
    buf_puts(&x, "<distances2hetero nbobjs=\"6\" kind=\"25\" name=\"NVLinkBandwidth\">\n");
    xml_content(&x, "indexes", "OSDev:15 PCIDev:52 PCIDev:22 PCIDev:54 PCIDev:24 Package:2 ");
    for (int i = 0; i < 6; i++) {
        char row[256];
        size_t o = 0;
        for (int k = 0; k < 6; k++)
            o += (size_t)snprintf(row + o, sizeof row - o, "%lu ", v[i][k]);
        xml_content(&x, "u64values", row);
    }
    buf_puts(&x, "</distances2hetero>\n</topology>\n");
    return x.data;
}

static topo *load_synthetic(unsigned long ab, unsigned long cs, unsigned long fs)
{
    char *x = synthetic_xml(ab, cs, fs);
    const char *tmp = write_tmp(x, strlen(x));
    free(x);
    if (!tmp)
        return NULL;
    char err[512] = "";
    topo *t = load_xml(tmp, err, sizeof err);
    if (!t)
        test_fail(__FILE__, __LINE__, "synthetic XML: %s", err);
    unlink(tmp);
    return t;
}

static void check_matrix(const topo *t, const char *const *want, size_t n)
{
    char s[16];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (strcmp(link_str(t, i, j, s, sizeof s), want[i * n + j]) != 0)
                test_fail(__FILE__, __LINE__, "GPU%zu-GPU%zu: expected %s, got %s", i, j, want[i * n + j], s);
}

TEST(topo_synthetic_gpus_and_links)
{
    topo *t = load_synthetic(50000, 75000, 50000);
    REQUIRE(t);
    CHECK_EQ_STR(t->name, "synthetic");
    REQUIRE(t->n_gpus == 6);
    static const char *const bus[6] = {"0000:03:00.0", "0000:04:00.0", "0000:07:00.0",
                                       "0000:11:00.0", "0000:21:00.0", "0000:22:00.0"};
    for (size_t i = 0; i < 6; i++)
        CHECK_EQ_STR(t->gpus[i].pci_bus_id, bus[i]);
    CHECK_EQ_STR(t->gpus[0].uuid, "GPU-aaaaaaaa-0000-0000-0000-000000000000");
    CHECK_EQ_STR(t->gpus[0].model, "NVIDIA H100 80GB HBM3");
    CHECK_EQ_STR(t->gpus[1].model, "Odd GPU");
    CHECK_EQ_STR(t->gpus[1].uuid, "GPU-bbbbbbbb-0000-0000-0000-000000000000");
    CHECK_EQ_INT(t->gpus[1].memory_bytes, 1024 * 1024);
    CHECK(t->gpus[3].model == NULL && t->gpus[3].uuid == NULL && t->gpus[3].memory_bytes == 0);
    CHECK_EQ_INT(t->gpus[3].numa, 0);
    CHECK_EQ_INT(t->gpus[4].numa, 1);
    CHECK_EQ_STR(t->gpus[4].cpuset, "1");
    /* A-E: 50000 MB/s direct = 2 links of 25000; C-F through the switch:
     * min(75000, 50000) = 2 links. The rest from the PCIe tree. */
    static const char *const want[36] = {
        "X",    "PIX",  "PXB",  "NODE", "NV2", "SYS", /* A */
        "PIX",  "X",    "PXB",  "NODE", "SYS", "SYS", /* B */
        "PXB",  "PXB",  "X",    "NODE", "SYS", "NV2", /* C */
        "NODE", "NODE", "NODE", "X",    "SYS", "SYS", /* D */
        "NV2",  "SYS",  "SYS",  "SYS",  "X",   "PHB", /* E */
        "SYS",  "SYS",  "NV2",  "SYS",  "PHB", "X",   /* F */
    };
    check_matrix(t, want, 6);
    topo_free(t);

    /* Values that are multiples of 20000 but not of 25000: NVLink 1 links. */
    t = load_synthetic(40000, 60000, 40000);
    REQUIRE(t);
    REQUIRE(t->n_gpus == 6);
    CHECK_EQ_INT(topo_link_get(t, 0, 4).nvlinks, 2);
    CHECK_EQ_INT(topo_link_get(t, 2, 5).nvlinks, 2);
    topo_free(t);

    /* 25000-multiples with a larger count. */
    t = load_synthetic(450000, 100000, 200000);
    REQUIRE(t);
    REQUIRE(t->n_gpus == 6);
    CHECK_EQ_INT(topo_link_get(t, 0, 4).nvlinks, 18);
    CHECK_EQ_INT(topo_link_get(t, 5, 2).nvlinks, 4);
    topo_free(t);
}

TEST(topo_refuses_more_than_4096_gpus)
{
    buf x = BUF_INIT;
    xml_begin(&x);
    xml_package(&x, 0, 2);
    xml_host_bridge(&x, 10, "0000:[00-ff]");
    int gp = 100;
    for (unsigned i = 0; i < 4097; i++) {
        char id[32];
        snprintf(id, sizeof id, "%04x:%02x:%02x.%x", i / 2048, (i / 8) % 256, 0, i % 8);
        xml_pcidev(&x, gp++, id, "0302 [10de:2330] [10de:16c1] a1");
        buf_puts(&x, "/>\n");
    }
    buf_puts(&x, "</object>\n</object>\n");
    xml_package(&x, 1, 40);
    buf_puts(&x, "</object>\n</object>\n</topology>\n");
    const char *tmp = write_tmp(x.data, x.len);
    buf_free(&x);
    REQUIRE(tmp);
    char err[512] = "";
    topo *t = NULL;
    topo_load_opts o = {.xml_path = tmp, .name = NULL, .probe_gpus = false};
    CHECK_EQ_INT(topo_load(&o, &t, err, sizeof err), -1);
    CHECK(t == NULL);
    CHECK(strstr(err, tmp) != NULL);
    CHECK(strstr(err, "4097 GPUs") != NULL);
    unlink(tmp);
}

/* --- refusals ------------------------------------------------------------------------------- */

static void check_refused(const char *path, const char *needle)
{
    char err[512] = "";
    topo sentinel;
    topo *t = &sentinel;
    topo_load_opts o = {.xml_path = path, .name = NULL, .probe_gpus = true};
    CHECK_EQ_INT(topo_load(&o, &t, err, sizeof err), -1);
    CHECK(t == &sentinel);
    if (!strstr(err, path) || !strstr(err, needle))
        test_fail(__FILE__, __LINE__, "error for %s: \"%s\" lacks \"%s\"", path, err, needle);
    CHECK(strchr(err, '\n') == NULL);
}

TEST(topo_bad_inputs_are_refused_with_one_line)
{
    check_refused("/nonexistent/jazari/topo.xml", "cannot read: No such file or directory");
    check_refused("/tmp", "not a regular file");

    const char *tmp = write_tmp("", 0);
    REQUIRE(tmp);
    check_refused(tmp, "empty file");
    unlink(tmp);

    static const char garbage[] = "this is not XML at all\n";
    tmp = write_tmp(garbage, sizeof garbage - 1);
    REQUIRE(tmp);
    check_refused(tmp, "not an hwloc XML topology");
    unlink(tmp);

    static const char other[] = "<?xml version=\"1.0\"?>\n<html><body>hello</body></html>\n";
    tmp = write_tmp(other, sizeof other - 1);
    REQUIRE(tmp);
    check_refused(tmp, "not an hwloc XML topology");
    unlink(tmp);

    /* Half of a real file. */
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/power8gpudistances.xml", test_hwloc_dir());
    char *x = read_all(path, &len);
    REQUIRE(x);
    tmp = write_tmp(x, len / 2);
    free(x);
    REQUIRE(tmp);
    check_refused(tmp, "cut short");
    unlink(tmp);

    /* Larger than 64 MiB (sparse: no disk used). */
    tmp = write_tmp("<", 1);
    REQUIRE(tmp);
    REQUIRE(truncate(tmp, (64 << 20) + 1) == 0);
    check_refused(tmp, "too large");
    unlink(tmp);

    char err[64];
    topo *t = NULL;
    CHECK_EQ_INT(topo_load(NULL, &t, err, sizeof err), -1);
}

/* --- printing what came from a peer --------------------------------------------------------- */

TEST(topo_print_tolerates_odd_indexes)
{
    topo *t = calloc(1, sizeof *t);
    REQUIRE(t);
    t->name = strdup("odd");
    t->n_packages = 1;
    t->packages = calloc(1, sizeof *t->packages);
    t->n_numa = 2;
    t->numa = calloc(2, sizeof *t->numa);
    t->numa[0] = (topo_numa){.os_index = 0, .package = 0, .memory_bytes = 1u << 20, .cpuset = NULL};
    t->numa[1] = (topo_numa){.os_index = 3, .package = 7, .memory_bytes = 0, .cpuset = NULL};
    t->n_gpus = 2;
    t->gpus = calloc(2, sizeof *t->gpus);
    t->gpus[0] = (topo_gpu){.index = 0, .numa = 3};
    t->gpus[1] = (topo_gpu){.index = 1, .numa = 9};
    t->links = calloc(4, sizeof *t->links);
    t->links[1] = t->links[2] = (topo_link){TOPO_LINK_NV, 4294967295u};
    buf b = BUF_INIT;
    topo_print(t, &b);
    const char *s = buf_str(&b);
    CHECK(strstr(s, "NUMANode P#3: memory unknown, cpuset unknown") != NULL);
    CHECK(strstr(s, "GPU1 (bus id unknown) (model unknown), memory unknown") != NULL);
    CHECK(strstr(s, "(NUMA node unknown)") != NULL);
    CHECK(strstr(s, "NV4294967295") != NULL);
    buf_reset(&b);
    json j;
    json_init(&j, &b, false);
    topo_to_json(t, &j);
    s = buf_str(&b);
    CHECK(strstr(s, "{\"os_index\":3,\"memory_bytes\":null,\"cpuset\":null,\"package\":null}") != NULL);
    CHECK(strstr(s, "\"gpu_links\":[[\"X\",\"NV4294967295\"],[\"NV4294967295\",\"X\"]]") != NULL);
    buf_free(&b);
    topo_free(t);

    /* No GPUs at all. */
    t = calloc(1, sizeof *t);
    REQUIRE(t);
    topo_print(t, &b);
    CHECK(strstr(buf_str(&b), "No GPUs.") != NULL);
    buf_free(&b);
    topo_free(t);
    topo_free(NULL);
}
