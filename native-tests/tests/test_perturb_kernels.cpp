// test_perturb_kernels.cpp: kernels/perturb.cu through the fake driver, against references
// written here that mirror the CPU twins (dev.kxai.backend.PerturbOps) line for line.
//
// perturb_single with one mask/baseline row for every sample and with one per row of the batch,
// groups that match some features, none (an id absent from the mask) and -1 (changes nothing);
// perturb_coalition with take entries that name another row of the batch (a feature
// permutation), the home row and -1 (the baseline), masks holding -1 (a feature in no group
// keeps its home value) and 1 to 5 groups; perturb_box on examples of rank 1, 2, 3, 4 and 6
// with full, empty (start == end, and start > end), cropped (start < 0, end > dim), out-of-range
// and random boxes. Samples copy home rows that repeat and are out of order. Features run over
// sizes that are not multiples of the block, at the Java launcher's geometry and at grids that
// make the grid-stride loops wrap.
//
// Every output is a copy of an x or a baseline value, so every comparison is on the bits
// (NaN payloads and the sign of zero included). Inputs are distinctive: x[r, f] = r·8192 + f +
// 0.25 and base[r, f] = −(r·8192 + f) − 0.5, so a value read from the wrong row, feature or
// tensor cannot pass; a few special values (a NaN with a payload, −0, a subnormal) check that
// nothing goes through arithmetic. Besides the references, the full box, the empty box and the
// group of −1 are checked against their meaning directly (base row / home row), and every case
// with enough features checks that its data reaches every source the kernel can choose from.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"
#include "kernel_test_util.h"

using namespace ktest;

namespace {

// The launcher's geometries and the wrapping one (kernel_test_util.h), plus a block that is
// not a multiple of the warp on three blocks.
const Geometry kBlock33 = {"block=33 grid<=3", 33, 3};
const Geometry kPerturbGeometries[] = {kLauncherEmulator, kLauncherGpu, kOddBlock, kBlock33};

const long long kFeatureCounts[] = {1, 7, 33, 257, 1000, 4099};

uint32_t bits(float v)
{
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
}

float from_bits(uint32_t u)
{
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

// x[r, f] = r·8192 + f + 0.25 (exact for the sizes here: below 2^22), with a quiet NaN that
// carries a payload in the last row and a subnormal at the end of row 0.
Floats make_x(int batch, long long features)
{
    Floats x(static_cast<size_t>(batch) * features);
    for (int r = 0; r < batch; ++r)
        for (long long f = 0; f < features; ++f)
            x[r * features + f] = static_cast<float>(r * 8192 + f) + 0.25f;
    x[(batch - 1) * features + std::min<long long>(1, features - 1)] = from_bits(0x7fc0abcdu);
    if (batch > 1 || features > 2)
        x[features - 1] = from_bits(0x00000123u);
    return x;
}

// base[r, f] = −(r·8192 + f) − 0.5, with −0 at [0, 0].
Floats make_base(int rows, long long features)
{
    Floats b(static_cast<size_t>(rows) * features);
    for (int r = 0; r < rows; ++r)
        for (long long f = 0; f < features; ++f)
            b[r * features + f] = -static_cast<float>(r * 8192 + f) - 0.5f;
    b[0] = -0.0f;
    return b;
}

// Bit-for-bit comparison of [samples, features] outputs; prints the first mismatches by
// (sample, feature).
void expect_bits(const std::string& what, const Floats& got, const Floats& want, long long features)
{
    size_t mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i)
        if (bits(got[i]) != bits(want[i]) && ++mismatches <= 5)
            CHECK_MSG(false, "%s[s=%lld, f=%lld]: got %.9g (0x%08x), want %.9g (0x%08x)", what.c_str(),
                      static_cast<long long>(i / features), static_cast<long long>(i % features),
                      static_cast<double>(got[i]), bits(got[i]), static_cast<double>(want[i]), bits(want[i]));
    CHECK_MSG(mismatches == 0, "%s: %zu of %zu elements differ", what.c_str(), mismatches, want.size());
}

// Row s of out must be row r of src, bit for bit (the meaning of a case, independent of the
// references).
void expect_row(const char* what, const Floats& out, int s, const Floats& src, int r, long long features)
{
    size_t mismatches = 0;
    for (long long f = 0; f < features; ++f)
        if (bits(out[s * features + f]) != bits(src[r * features + f]))
            ++mismatches;
    CHECK_MSG(mismatches == 0, "sample %d is not %s row %d: %zu of %lld features differ", s, what, r, mismatches,
              features);
}

// ---- references: PerturbOps.single / coalition / box, line for line ----------------------

// Which sources the data made the reference pick: every case must reach all of them.
struct Sources {
    size_t home = 0, base = 0, other_row = 0;
};

Floats reference_single(const Floats& x, const Floats& base, int baseRows, const Ints& mask, int maskRows,
                        const Ints& home, const Ints& group, int samples, int features, Sources& used)
{
    Floats out(static_cast<size_t>(samples) * features);
    for (int s = 0; s < samples; s++) {
        int r = home[s];
        int m = (maskRows == 1 ? 0 : r) * features;
        int b = (baseRows == 1 ? 0 : r) * features;
        int src = r * features;
        int dst = s * features;
        int g = group[s];
        for (int f = 0; f < features; f++) {
            const bool take_base = mask[m + f] == g;
            out[dst + f] = take_base ? base[b + f] : x[src + f];
            ++(take_base ? used.base : used.home);
        }
    }
    return out;
}

Floats reference_coalition(const Floats& x, const Floats& base, int baseRows, const Ints& mask, int maskRows,
                           const Ints& home, const Ints& take, int groups, int samples, int features, Sources& used)
{
    Floats out(static_cast<size_t>(samples) * features);
    for (int s = 0; s < samples; s++) {
        int r = home[s];
        int m = (maskRows == 1 ? 0 : r) * features;
        int b = (baseRows == 1 ? 0 : r) * features;
        int dst = s * features;
        for (int f = 0; f < features; f++) {
            int g = mask[m + f];
            int t = g < 0 ? r : take[s * groups + g];  // a feature in no group (-1) keeps its home value
            out[dst + f] = t >= 0 ? x[t * features + f] : base[b + f];
            ++(t < 0 ? used.base : t == r ? used.home : used.other_row);
        }
    }
    return out;
}

Floats reference_box(const Floats& x, const Floats& base, int baseRows, const Ints& home, const Ints& boxes,
                     const Ints& dims, int samples, int features, Sources& used)
{
    Floats out(static_cast<size_t>(samples) * features);
    int rank = static_cast<int>(dims.size());
    for (int s = 0; s < samples; s++) {
        int r = home[s];
        int b = (baseRows == 1 ? 0 : r) * features;
        int src = r * features;
        int dst = s * features;
        int bx = s * 2 * rank;
        for (int f = 0; f < features; f++) {
            bool inside = true;
            int rest = f;
            for (int d = rank - 1; d >= 0; d--) {
                int c = rest % dims[d];
                rest /= dims[d];
                inside &= c >= boxes[bx + 2 * d] && c < boxes[bx + 2 * d + 1];
            }
            out[dst + f] = inside ? base[b + f] : x[src + f];
            ++(inside ? used.base : used.home);
        }
    }
    return out;
}

// Home rows that repeat and are out of order: 2, 0, 2, 1, ... over a batch.
Ints scrambled_homes(int samples, int batch)
{
    Ints home(samples);
    for (int s = 0; s < samples; ++s)
        home[s] = (s * 5 + 2) % batch;
    if (samples > 2 && batch > 1)
        home[samples - 1] = home[0];  // the first sample's row again, last
    return home;
}

std::string rows_name(int rows, int batch)
{
    return rows == 1 ? std::string("1") : "batch(" + std::to_string(batch) + ")";
}

// ---- perturb_single ------------------------------------------------------------------------

struct SingleCase {
    int batch;
    long long features;
    int base_rows;
    int mask_rows;
};

void test_single(const SingleCase& c, const Geometry& g)
{
    const int groups = 4;
    const int samples = 10;
    const Floats x = make_x(c.batch, c.features), base = make_base(c.base_rows, c.features);
    // group ids 0..3, no -1 in the mask: a group of -1 matches nothing there and changes nothing
    const Ints mask = random_ints(static_cast<size_t>(c.mask_rows) * c.features, 0, groups - 1, 51);
    const Ints home = scrambled_homes(samples, c.batch);
    // each group, -1 twice, and 7 (in no mask entry) once
    const Ints group = {0, -1, 1, 2, 0, 3, -1, 1, 7, 2};
    Sources used;
    const Floats want = reference_single(x, base, c.base_rows, mask, c.mask_rows, home, group, samples,
                                         static_cast<int>(c.features), used);
    if (c.features >= 33)
        CHECK_MSG(used.base > 0 && used.home > 0, "test data reaches only one source (base %zu, home %zu)",
                  used.base, used.home);

    const long long n = samples * c.features;
    device::Buffer out(n * 4), dx(x.size() * 4), db(base.size() * 4), dm(mask.size() * 4), dh(home.size() * 4),
        dg(group.size() * 4);
    dx.upload(x);
    db.upload(base);
    dm.upload(mask);
    dh.upload(home);
    dg.upload(group);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("perturb", "perturb_single"), {grid_for(g, n)}, {g.block},
                                          0, out.ptr(), dx.ptr(), db.ptr(), c.base_rows, dm.ptr(), c.mask_rows,
                                          dh.ptr(), dg.ptr(), samples, c.features));
    const Floats got = out.download<float>(n);
    expect_bits("out", got, want, c.features);
    for (int s = 0; s < samples; ++s)
        if (group[s] == -1 || group[s] == 7)
            expect_row("the home", got, s, x, home[s], c.features);
}

// ---- perturb_coalition -----------------------------------------------------------------------

struct CoalitionCase {
    int batch;
    long long features;
    int base_rows;
    int mask_rows;
    int groups;
    bool permutation;  // take: the rows of a feature permutation (other rows of the batch, no -1)
};

void test_coalition(const CoalitionCase& c, const Geometry& g)
{
    const int samples = 9;
    const Floats x = make_x(c.batch, c.features), base = make_base(c.base_rows, c.features);
    // groups 0..groups-1 and -1 (a feature in no group)
    Ints mask = random_ints(static_cast<size_t>(c.mask_rows) * c.features, -1, c.groups - 1, 52);
    const Ints home = scrambled_homes(samples, c.batch);
    Ints take(static_cast<size_t>(samples) * c.groups);
    std::mt19937 rng(53);
    for (int s = 0; s < samples; ++s)
        for (int k = 0; k < c.groups; ++k) {
            int t;
            if (c.permutation)  // a permutation of the batch applied to some groups, the home row to others
                t = (rng() % 3 == 0) ? home[s] : (home[s] + 1 + static_cast<int>(rng() % (c.batch - 1))) % c.batch;
            else  // the baseline, the home row or another row
                t = static_cast<int>(rng() % (c.batch + 1)) - 1;
            take[s * c.groups + k] = t;
        }
    if (!c.permutation) {
        // sample 0: every group to the baseline; sample 1: every group to another row
        for (int k = 0; k < c.groups; ++k) {
            take[k] = -1;
            take[c.groups + k] = (home[1] + 1) % c.batch;
        }
    }
    Sources used;
    const Floats want = reference_coalition(x, base, c.base_rows, mask, c.mask_rows, home, take, c.groups, samples,
                                            static_cast<int>(c.features), used);
    if (c.features >= 33) {
        CHECK_MSG(used.home > 0 && used.other_row > 0 && (c.permutation || used.base > 0),
                  "test data misses a source (base %zu, home %zu, other row %zu)", used.base, used.home,
                  used.other_row);
        CHECK_MSG(std::count(mask.begin(), mask.end(), -1) > 0, "mask holds no -1");
    }

    const long long n = samples * c.features;
    device::Buffer out(n * 4), dx(x.size() * 4), db(base.size() * 4), dm(mask.size() * 4), dh(home.size() * 4),
        dt(take.size() * 4);
    dx.upload(x);
    db.upload(base);
    dm.upload(mask);
    dh.upload(home);
    dt.upload(take);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("perturb", "perturb_coalition"), {grid_for(g, n)},
                                          {g.block}, 0, out.ptr(), dx.ptr(), db.ptr(), c.base_rows, dm.ptr(),
                                          c.mask_rows, dh.ptr(), dt.ptr(), c.groups, samples, c.features));
    expect_bits("out", out.download<float>(n), want, c.features);
}

// ---- perturb_box ---------------------------------------------------------------------------

struct BoxCase {
    Ints dims;
    int batch;
    int base_rows;
};

std::string str(const Ints& v)
{
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i)
        s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

void test_box(const BoxCase& c, const Geometry& g)
{
    const int rank = static_cast<int>(c.dims.size());
    long long features = 1;
    for (int d : c.dims)
        features *= d;
    // one box per line: [start, end) on every axis
    std::vector<Ints> boxes_of;
    auto add = [&](auto bounds) {  // bounds(d) -> {start, end}
        Ints b(2 * rank);
        for (int d = 0; d < rank; ++d) {
            const std::pair<int, int> se = bounds(d);
            b[2 * d] = se.first;
            b[2 * d + 1] = se.second;
        }
        boxes_of.push_back(b);
    };
    const int kFull = 0, kEmptyLast = 1, kEmptyFirst = 2, kInverted = 3, kCover = 4, kPast = 7;
    add([&](int d) { return std::make_pair(0, c.dims[d]); });                                    // full
    add([&](int d) { return d == rank - 1 ? std::make_pair(1, 1) : std::make_pair(0, c.dims[d]); });  // empty
    add([&](int d) { return d == 0 ? std::make_pair(c.dims[0], c.dims[0]) : std::make_pair(0, c.dims[d]); });  // empty
    add([&](int d) { return d == 0 ? std::make_pair(2, 1) : std::make_pair(0, c.dims[d]); });      // start > end
    add([](int) { return std::make_pair(-1000, 1000); });                                        // full, cropped
    add([](int) { return std::make_pair(-2, 2); });                                              // cropped at 0
    add([&](int d) { return std::make_pair(c.dims[d] - 2, c.dims[d] + 3); });                    // cropped at the end
    add([&](int d) { return std::make_pair(c.dims[d], c.dims[d] + 4); });                        // past the end: empty
    add([&](int d) { return std::make_pair(d == 0 ? 0 : 1, std::max(1, c.dims[d] - 1)); });      // interior
    std::mt19937 rng(54);
    for (int k = 0; k < 4; ++k)  // random boxes, cropped or not
        add([&](int d) {
            const int start = static_cast<int>(rng() % (c.dims[d] + 2)) - 1;
            const int end = start + 1 + static_cast<int>(rng() % (c.dims[d] + 1));
            return std::make_pair(start, end);
        });
    const int samples = static_cast<int>(boxes_of.size());
    Ints boxes;
    for (const Ints& b : boxes_of)
        boxes.insert(boxes.end(), b.begin(), b.end());

    const Floats x = make_x(c.batch, features), base = make_base(c.base_rows, features);
    const Ints home = scrambled_homes(samples, c.batch);
    Sources used;
    const Floats want =
        reference_box(x, base, c.base_rows, home, boxes, c.dims, samples, static_cast<int>(features), used);

    const long long n = samples * features;
    device::Buffer out(n * 4), dx(x.size() * 4), db(base.size() * 4), dh(home.size() * 4), dbox(boxes.size() * 4),
        dd(c.dims.size() * 4);
    dx.upload(x);
    db.upload(base);
    dh.upload(home);
    dbox.upload(boxes);
    dd.upload(c.dims);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("perturb", "perturb_box"), {grid_for(g, n)}, {g.block}, 0,
                                          out.ptr(), dx.ptr(), db.ptr(), c.base_rows, dh.ptr(), dbox.ptr(), dd.ptr(),
                                          rank, samples, features));
    const Floats got = out.download<float>(n);
    expect_bits("out", got, want, features);
    // the meaning of the fixed boxes, independently of the reference
    for (int s : {kFull, kCover})
        expect_row("the baseline", got, s, base, c.base_rows == 1 ? 0 : home[s], features);
    for (int s : {kEmptyLast, kEmptyFirst, kInverted, kPast})
        expect_row("the home", got, s, x, home[s], features);
}

}  // namespace

SUITE(perturb_kernels)
{
    device::use_primary_context();
    std::printf("module image: %s\n", harness::ptx_is_from_nvcc("perturb") ? "nvcc PTX"
                                                                             : "signature-only PTX (no nvcc)");
    for (const Geometry& g : kPerturbGeometries) {
        for (long long features : kFeatureCounts) {
            for (int batch : {1, 3})
                for (int per_row_base : {0, 1})
                    for (int per_row_mask : {0, 1}) {
                        if (batch == 1 && (per_row_base || per_row_mask))
                            continue;  // batch 1: one row is both
                        const int base_rows = per_row_base ? batch : 1, mask_rows = per_row_mask ? batch : 1;
                        const SingleCase c{batch, features, base_rows, mask_rows};
                        harness::run_case("perturb_single batch=" + std::to_string(batch) + " features=" +
                                              std::to_string(features) + " base_rows=" + rows_name(base_rows, batch) +
                                              " mask_rows=" + rows_name(mask_rows, batch) + " " + g.name,
                                          [&] { test_single(c, g); });
                    }
            for (int groups : {1, 3, 5})
                for (bool permutation : {false, true})
                    for (int rows : {0, 1, 2}) {  // (base, mask) rows: (1, 1), (batch, 1), (1, batch)
                        const int batch = 4;
                        const CoalitionCase c{batch, features, rows == 1 ? batch : 1, rows == 2 ? batch : 1, groups,
                                              permutation};
                        harness::run_case("perturb_coalition batch=4 features=" + std::to_string(features) +
                                              " groups=" + std::to_string(groups) +
                                              (permutation ? " take=permutation" : " take=rows/home/-1") +
                                              " base_rows=" + rows_name(c.base_rows, batch) +
                                              " mask_rows=" + rows_name(c.mask_rows, batch) + " " + g.name,
                                          [&] { test_coalition(c, g); });
                    }
        }
        const BoxCase kBoxes[] = {
            {{37}, 3, 1},           {{37}, 3, 3},       {{1}, 2, 2},          {{5, 7}, 3, 1},
            {{5, 7}, 2, 2},         {{1, 9}, 3, 3},     {{3, 4, 5}, 3, 1},    {{3, 4, 5}, 3, 3},
            {{2, 17, 31}, 2, 2},    {{3, 1, 33}, 3, 1}, {{2, 3, 4, 5}, 3, 3}, {{2, 1, 3, 2, 1, 2}, 2, 1},
        };
        for (const BoxCase& c : kBoxes)
            harness::run_case("perturb_box dims=" + str(c.dims) + " batch=" + std::to_string(c.batch) +
                                  " base_rows=" + rows_name(c.base_rows, c.batch) + " " + g.name,
                              [&] { test_box(c, g); });
    }
}
