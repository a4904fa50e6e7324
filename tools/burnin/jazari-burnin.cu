// jazari-burnin - the burn-in of a new or repaired GPU node (jz node check,
// the policy's `burnin on-join`; daemon/burnin.c runs it as burnin_program).
//
// On every GPU at once (one host thread each), within a time budget:
//   1. a memory pattern test over most of the GPU's free memory: walking
//      ones and walking zeros (a single bit set, or cleared, moving with
//      the address and the pass, so that every bit of every word sees both
//      values), address in address (each word holds its own address, then
//      its complement: finds address-line faults), and random words from a
//      seed (regenerated to check); the first bad address is reported with
//      what was read and what was written;
//   2. a matrix multiply of our own (a tiled single-precision kernel),
//      checked element by element against a CPU reference in double
//      precision, within a tolerance scaled by the sum of |a||b| over k.
//
// Output, as health_program's contract: the first line is the verdict and,
// on a failure, the reason ("burn-in FAILED: GPU 3 (...): walking ones:
// first bad address 0x..."); then one line per GPU; then the verdict again
// (last, for a person reading the end). Progress goes to stderr.
// Exit status: 0 passed, 1 failed, 2 bad usage or no GPU at all.
//
// Built by the Makefile when nvcc is found (build/jazari-burnin); no
// library beyond the CUDA runtime.
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// --- options -------------------------------------------------------------------

struct opts {
    double budget_s = 120;       // the whole run; each GPU gets it all (they run at once)
    double mem_fraction = 0.90;  // of the free memory, tested
    int gpu = -1;                // only this one (-1: all)
    uint64_t seed = 0x6a617a617269ull;
    int n = 1024;                // the matrices' side
    bool quick = false;          // one pass of each pattern, one multiply: a smoke test
};

void usage(FILE *f)
{
    std::fprintf(f,
                 "usage: jazari-burnin [--budget SECONDS] [--mem-fraction F] [--gpu N] [--seed N] [--size N] "
                 "[--quick]\n"
                 "  Tests every GPU's memory (walking ones/zeros, address in address, random) and runs a\n"
                 "  matrix multiply checked against the CPU. First line: the verdict (on a failure, the\n"
                 "  reason). Exit 0 passed, 1 failed, 2 bad usage or no GPU. The budget defaults to\n"
                 "  $JAZARI_BURNIN_BUDGET_S (set by jazarid from burnin_timeout), else 120 s.\n");
}

bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = std::strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

// 0, or 2 after printing why.
int parse(int argc, char **argv, opts *o)
{
    const char *env = std::getenv("JAZARI_BURNIN_BUDGET_S");
    if (env && *env && !parse_double(env, 1, 86400, &o->budget_s)) {
        std::printf("bad JAZARI_BURNIN_BUDGET_S '%.40s': seconds from 1 to 86400\n", env);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        double d;
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (a == "--quick") {
            o->quick = true;
            continue;
        } else if (!v) {
            std::printf("bad usage: %s needs a value\n", a.c_str());
            usage(stderr);
            return 2;
        } else if (a == "--budget" && parse_double(v, 1, 86400, &d)) {
            o->budget_s = d;
        } else if (a == "--mem-fraction" && parse_double(v, 0.001, 0.98, &d)) {
            o->mem_fraction = d;
        } else if (a == "--gpu" && parse_double(v, 0, 1023, &d) && d == std::floor(d)) {
            o->gpu = (int)d;
        } else if (a == "--seed" && parse_double(v, 0, 1e18, &d) && d == std::floor(d)) {
            o->seed = (uint64_t)d;
        } else if (a == "--size" && parse_double(v, 16, 8192, &d) && d == std::floor(d) && (int)d % 16 == 0) {
            o->n = (int)d;
        } else {
            std::printf("bad usage: %s %.40s\n", a.c_str(), v);
            usage(stderr);
            return 2;
        }
        i++;
    }
    return 0;
}

double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// --- memory patterns -----------------------------------------------------------------

enum pattern { WALK_ONES, WALK_ZEROS, ADDRESS, ADDRESS_NOT, RANDOM, N_PATTERNS };
const char *const pattern_names[N_PATTERNS] = {"walking ones", "walking zeros", "address in address",
                                               "address complement", "random"};

__host__ __device__ inline uint64_t mix64(uint64_t x)
{
    // splitmix64's finaliser: every input bit moves every output bit.
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// What word i of the buffer at device address base holds in pass p.
__host__ __device__ inline uint64_t pattern_word(int pat, unsigned pass, uint64_t seed, uint64_t base, uint64_t i)
{
    switch (pat) {
    case WALK_ONES:
        return 1ull << ((i + pass) & 63);
    case WALK_ZEROS:
        return ~(1ull << ((i + pass) & 63));
    case ADDRESS:
        return base + i * 8;
    case ADDRESS_NOT:
        return ~(base + i * 8);
    default:
        return mix64(seed ^ mix64(i + ((uint64_t)pass << 48)));
    }
}

__global__ void mem_fill(uint64_t *buf, uint64_t n, int pat, unsigned pass, uint64_t seed)
{
    uint64_t base = (uint64_t)(uintptr_t)buf;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x)
        buf[i] = pattern_word(pat, pass, seed, base, i);
}

// bad[0]: words that differ; bad[1]: the lowest index of one.
__global__ void mem_check(const uint64_t *buf, uint64_t n, int pat, unsigned pass, uint64_t seed,
                          unsigned long long *bad)
{
    uint64_t base = (uint64_t)(uintptr_t)buf;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
         i += (uint64_t)gridDim.x * blockDim.x) {
        if (buf[i] != pattern_word(pat, pass, seed, base, i)) {
            atomicAdd(&bad[0], 1ull);
            atomicMin(&bad[1], (unsigned long long)i);
        }
    }
}

// --- the matrix multiply ---------------------------------------------------------------

constexpr int TILE = 16;

// C = A B, all n x n row-major, n a multiple of TILE: each block computes a
// TILE x TILE tile of C from tiles of A and B staged in shared memory.
__global__ void sgemm(const float *A, const float *B, float *C, int n)
{
    __shared__ float as[TILE][TILE];
    __shared__ float bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < n; t += TILE) {
        as[threadIdx.y][threadIdx.x] = A[(size_t)row * n + t + threadIdx.x];
        bs[threadIdx.y][threadIdx.x] = B[(size_t)(t + threadIdx.y) * n + col];
        __syncthreads();
        for (int k = 0; k < TILE; k++)
            acc = fmaf(as[threadIdx.y][k], bs[k][threadIdx.x], acc);
        __syncthreads();
    }
    C[(size_t)row * n + col] = acc;
}

struct reference {
    int n = 0;
    std::vector<float> a, b;
    std::vector<double> c, scale; // scale: sum over k of |a||b|, for the tolerance
};

// The CPU's product, in double, computed once for every GPU.
void reference_make(reference *r, int n, uint64_t seed)
{
    r->n = n;
    size_t nn = (size_t)n * n;
    r->a.resize(nn);
    r->b.resize(nn);
    r->c.assign(nn, 0.0);
    r->scale.assign(nn, 0.0);
    for (size_t i = 0; i < nn; i++) {
        // Uniform in [-1, 1), from the seed.
        r->a[i] = (float)((double)(mix64(seed ^ (2 * i)) >> 11) / 4503599627370496.0 - 1.0);
        r->b[i] = (float)((double)(mix64(seed ^ (2 * i + 1)) >> 11) / 4503599627370496.0 - 1.0);
    }
    std::vector<double> row(n), srow(n);
    for (int i = 0; i < n; i++) {
        std::fill(row.begin(), row.end(), 0.0);
        std::fill(srow.begin(), srow.end(), 0.0);
        for (int k = 0; k < n; k++) {
            double a = r->a[(size_t)i * n + k];
            const float *bk = &r->b[(size_t)k * n];
            for (int j = 0; j < n; j++) {
                row[j] += a * bk[j];
                srow[j] += std::fabs(a * bk[j]);
            }
        }
        std::copy(row.begin(), row.end(), r->c.begin() + (size_t)i * n);
        std::copy(srow.begin(), srow.end(), r->scale.begin() + (size_t)i * n);
    }
}

// --- one GPU ---------------------------------------------------------------------------------

struct gpu_result {
    int index = 0;
    char name[256] = "";
    bool ok = false;
    std::string reason; // the failure, for the verdict
    std::string line;   // this GPU's line
};

struct gpu_run {
    const opts *o;
    const reference *ref;
    gpu_result *res;
    double deadline;
};

void progress(int gpu, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "GPU %d: %s\n", gpu, msg);
}

// A CUDA call that failed: the GPU fails with the step and the error.
#define CK(step, call)                                                                                              \
    do {                                                                                                            \
        cudaError_t e_ = (call);                                                                                    \
        if (e_ != cudaSuccess) {                                                                                    \
            fail(r, std::string("CUDA error in ") + (step) + ": " + cudaGetErrorString(e_));                        \
            goto out;                                                                                               \
        }                                                                                                           \
    } while (0)

void fail(gpu_result *r, const std::string &why)
{
    if (r->reason.empty())
        r->reason = why;
    r->ok = false;
}

std::string fmt(const char *f, ...)
{
    char s[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(s, sizeof s, f, ap);
    va_end(ap);
    return s;
}

void run_gpu(gpu_run g)
{
    const opts *o = g.o;
    gpu_result *r = g.res;
    const int dev = r->index;
    uint64_t *buf = nullptr;
    unsigned long long *bad = nullptr;
    float *da = nullptr, *db = nullptr, *dc = nullptr;
    size_t words = 0;
    unsigned passes = 0;
    int multiplies = 0;
    double worst = 0;
    double t0 = now_s();
    int sms = 1;
    size_t nn = (size_t)o->n * o->n;
    std::vector<float> host_c(nn);
    r->ok = true;
    CK("cudaSetDevice", cudaSetDevice(dev));
    {
        cudaDeviceProp p;
        CK("cudaGetDeviceProperties", cudaGetDeviceProperties(&p, dev));
        std::snprintf(r->name, sizeof r->name, "%s", p.name);
        sms = p.multiProcessorCount > 0 ? p.multiProcessorCount : 1;
    }
    // The matrix multiply's share of the budget is small; the memory test
    // takes three quarters of what is left.
    {
        size_t free_b = 0, total_b = 0;
        CK("cudaMemGetInfo", cudaMemGetInfo(&free_b, &total_b));
        size_t matrices = 3 * nn * sizeof(float) + (64u << 20);
        size_t want = (size_t)((double)free_b * o->mem_fraction);
        want = want > matrices ? want - matrices : 0;
        // What the driver will give: a little less each time it refuses.
        while (want >= (64u << 20) && cudaMalloc(&buf, want) != cudaSuccess) {
            (void)cudaGetLastError();
            buf = nullptr;
            want = want / 16 * 15;
        }
        if (!buf) {
            fail(r, fmt("cannot allocate GPU memory to test (%.1f GiB free of %.1f)", free_b / 1073741824.0,
                        total_b / 1073741824.0));
            goto out;
        }
        words = want / sizeof(uint64_t);
        progress(dev, "%s: testing %.1f GiB of %.1f GiB", r->name, want / 1073741824.0, total_b / 1073741824.0);
    }
    CK("cudaMalloc", cudaMalloc(&bad, 2 * sizeof *bad));
    {
        double mem_end = t0 + (g.deadline - t0) * 0.75;
        int blocks = sms * 8, threads = 256;
        // Every pattern once, then again with the next pass number (a
        // different bit position, different random words) while time is
        // left.
        for (unsigned pass = 0; !passes || (!o->quick && now_s() < mem_end); pass++) {
            for (int pat = 0; pat < N_PATTERNS; pat++) {
                if (pass > 0 && (pat == ADDRESS || pat == ADDRESS_NOT) && pass % 8 != 0)
                    continue; // the same words every pass: seldom repeated
                unsigned long long init[2] = {0, ~0ull};
                CK("cudaMemcpy", cudaMemcpy(bad, init, sizeof init, cudaMemcpyHostToDevice));
                mem_fill<<<blocks, threads>>>(buf, words, pat, pass, o->seed);
                CK("the fill kernel", cudaGetLastError());
                mem_check<<<blocks, threads>>>(buf, words, pat, pass, o->seed, bad);
                CK("the check kernel", cudaGetLastError());
                CK("cudaDeviceSynchronize (memory test)", cudaDeviceSynchronize());
                unsigned long long got[2];
                CK("cudaMemcpy", cudaMemcpy(got, bad, sizeof got, cudaMemcpyDeviceToHost));
                if (got[0]) {
                    uint64_t word = 0, i = got[1];
                    CK("cudaMemcpy", cudaMemcpy(&word, buf + i, sizeof word, cudaMemcpyDeviceToHost));
                    uint64_t want_w = pattern_word(pat, pass, o->seed, (uint64_t)(uintptr_t)buf, i);
                    fail(r, fmt("%s (pass %u): first bad address 0x%llx (read 0x%016llx, want 0x%016llx), %llu "
                                "bad words",
                                pattern_names[pat], pass, (unsigned long long)((uintptr_t)buf + i * 8),
                                (unsigned long long)word, (unsigned long long)want_w, got[0]));
                    goto out;
                }
            }
            passes++;
        }
        progress(dev, "memory ok: %u passes over %.1f GiB in %.0f s", passes, words * 8 / 1073741824.0,
                 now_s() - t0);
    }
    CK("cudaFree", cudaFree(buf));
    buf = nullptr;
    // The matrix multiply, again and again until the deadline (once at least).
    CK("cudaMalloc", cudaMalloc(&da, nn * sizeof(float)));
    CK("cudaMalloc", cudaMalloc(&db, nn * sizeof(float)));
    CK("cudaMalloc", cudaMalloc(&dc, nn * sizeof(float)));
    CK("cudaMemcpy", cudaMemcpy(da, g.ref->a.data(), nn * sizeof(float), cudaMemcpyHostToDevice));
    CK("cudaMemcpy", cudaMemcpy(db, g.ref->b.data(), nn * sizeof(float), cudaMemcpyHostToDevice));
    while (multiplies == 0 || (!o->quick && now_s() < g.deadline)) {
        CK("cudaMemset", cudaMemset(dc, 0xff, nn * sizeof(float))); // NaN: a product not written shows
        dim3 grid(o->n / TILE, o->n / TILE), block(TILE, TILE);
        sgemm<<<grid, block>>>(da, db, dc, o->n);
        CK("the matrix multiply kernel", cudaGetLastError());
        CK("cudaDeviceSynchronize (matrix multiply)", cudaDeviceSynchronize());
        CK("cudaMemcpy", cudaMemcpy(host_c.data(), dc, nn * sizeof(float), cudaMemcpyDeviceToHost));
        multiplies++;
        for (size_t i = 0; i < nn; i++) {
            double want = g.ref->c[i], err = std::fabs((double)host_c[i] - want);
            // float accumulation over n terms: a few ulps of the terms' size each.
            double tol = 1e-4 * g.ref->scale[i] + 1e-6;
            double rel = err / (g.ref->scale[i] + 1e-30);
            if (!(err <= tol)) {
                fail(r, fmt("matrix multiply (run %d, n=%d): C[%zu][%zu] = %.9g, the CPU says %.9g", multiplies,
                            o->n, i / o->n, i % o->n, (double)host_c[i], want));
                goto out;
            }
            if (rel > worst)
                worst = rel;
        }
    }
    progress(dev, "matrix multiply ok: %d runs", multiplies);
out:
    if (buf)
        cudaFree(buf);
    if (bad)
        cudaFree(bad);
    if (da)
        cudaFree(da);
    if (db)
        cudaFree(db);
    if (dc)
        cudaFree(dc);
    double took = now_s() - t0;
    if (r->ok)
        r->line = fmt("GPU %d (%s): passed: memory ok (%.1f GiB, %u passes of %d patterns), matrix multiply ok "
                      "(%d runs, n=%d, max error %.2g of the scale) in %.0f s",
                      dev, r->name, words * 8 / 1073741824.0, passes, (int)N_PATTERNS, multiplies, o->n, worst,
                      took);
    else
        r->line = fmt("GPU %d (%s): FAILED: %s (after %.0f s)", dev, r->name[0] ? r->name : "?", r->reason.c_str(),
                      took);
    // A sticky error (an ECC fault, an illegal address) leaves the context
    // unusable: it goes, so that nothing else of this process trips on it.
    if (!r->ok)
        cudaDeviceReset();
}

} // namespace

int main(int argc, char **argv)
{
    opts o;
    if (parse(argc, argv, &o) != 0)
        return 2;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        std::printf("no GPU: %s\n", e != cudaSuccess ? cudaGetErrorString(e) : "the CUDA runtime sees none");
        return 2;
    }
    if (o.gpu >= count) {
        std::printf("bad usage: --gpu %d, but there are %d GPUs (0-%d)\n", o.gpu, count, count - 1);
        return 2;
    }
    double start = now_s();
    std::vector<gpu_result> res(count);
    std::vector<std::thread> threads;
    // The reference first (single-threaded, on the CPU): about n^3 steps.
    double t = now_s();
    reference ref;
    reference_make(&ref, o.n, o.seed);
    std::fprintf(stderr, "CPU reference of the %dx%d product in %.1f s\n", o.n, o.n, now_s() - t);
    double deadline = start + o.budget_s;
    for (int i = 0; i < count; i++) {
        if (o.gpu >= 0 && i != o.gpu)
            continue;
        res[i].index = i;
        threads.emplace_back(run_gpu, gpu_run{&o, &ref, &res[i], deadline});
    }
    for (auto &th : threads)
        th.join();
    int tested = 0, failed = 0;
    std::string first;
    for (int i = 0; i < count; i++) {
        if (o.gpu >= 0 && i != o.gpu)
            continue;
        tested++;
        if (!res[i].ok && !failed++)
            first = fmt("GPU %d (%s): %s", i, res[i].name[0] ? res[i].name : "?", res[i].reason.c_str());
    }
    std::string verdict =
        failed ? fmt("burn-in FAILED on %d of %d GPUs: %s", failed, tested, first.c_str())
               : fmt("burn-in passed: %d GPU%s, memory patterns and matrix multiply checked in %.0f s", tested,
                     tested == 1 ? "" : "s", now_s() - start);
    std::printf("%s\n", verdict.c_str());
    for (int i = 0; i < count; i++)
        if (o.gpu < 0 || i == o.gpu)
            std::printf("%s\n", res[i].line.c_str());
    std::printf("verdict: %s\n", failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
