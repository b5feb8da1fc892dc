// Event-driven SpiNNaker-style simulator: the C++ engine of neuro.hardware.spinnaker.
//
// Same algorithm as the numpy engine in engine.py (that file's docstring is the specification):
// per tick, (1) neuron update of every active population from ring-buffer slot t mod 16, then
// (2) packets vertex by vertex in placement order, each crossing its multicast tree (links with a
// per-tick capacity; packets beyond it are dropped on that link) and, on every reached core,
// either a synaptic-row lookup that adds +-(weight << shift) into ring[(t + delay) mod 16] or a
// delay-extension queue for t + 16 j. Integer arithmetic only: the results equal the numpy
// engine's bit for bit.
//
// Built on first use by neuro.kernels._ext.load_extension and registered as
// torch.ops.neuro_spinnaker.run(arrays, scalars, input) -> (spikes [K, 3] (reference step,
// sample, neuron), membranes [T, B, n_li], counters, per_vertex [2, V], atom_count).
// `arrays` are the Program fields named in engine.CPP_ARRAYS, in that order (int64, except
// sim_word: int32 [words, 2]); `scalars` the fields named in engine.CPP_SCALARS.
//
// Synapses are read in the pre-resolved form of program.Program, interleaved (Program.sim_word,
// one 8-byte pair per synaptic word, so a row is one contiguous stream): off = delay * N +
// target neuron (an offset into the ring buffer relative to the current tick's slot) and
// val = +-(weight << shift). Fast path: when every target core of a vertex receives all
// its packets of the tick (no drop on its tree), one packet's rows on all those cores are one
// contiguous block (rows are interleaved atom by atom, see synapses.Matrices); it is processed in
// one loop (its words are blk_start[v_countbase[v] + atom] .. [.. + atom + 1]) and counted in
// atom_count[v_countbase[v] + atom], from which engine._fast_path_stats
// derives the row statistics (rows fetched, synaptic events per core) after the run. Otherwise
// rows are processed and counted one by one.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kSlots = 16;

enum Array {
  POP_START, POP_SIZE, POP_OFFSET, POP_SPIKING, POP_CUBA, POP_SUBTRACT, POP_LI_COL,
  BIAS, BETA_M, ALPHA_M, VTH, SRC_START,
  V_KIND, V_POP, V_LO, V_N, V_SRC_N, V_EXT_BASE,
  TREE_PTR, TREE_LINK, TREE_PARENT,
  DEST_PTR, DEST_NODE, DEST_KIND, DEST_TARGET, DEST_VERTEX,
  MAT_ROWBASE, MAT_STRIDE, ROW_START, EXT_MASK, SIM_WORD,
  BLK_START, V_COUNTBASE,
  N_ARRAYS
};
enum Scalar { N_NEURONS, N_LI, LATENCY, MAX_STAGES, N_LINKS, LINK_CAPACITY, DECAY_BITS,
              STATE_MIN, STATE_MAX, NARROW, N_SCALARS };
enum Counter { PACKETS, EXT_PACKETS, HOPS, ROWS, EVENTS, DROPPED, UPDATES, SPIKES, TICKS,
               N_COUNTERS };
constexpr int64_t KIND_SOURCE = 0, KIND_NEURONS = 1, KIND_EXT = 2, DEST_MATRIX = 0;

inline int64_t sat(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

template <typename Acc>
struct Params {
  Acc* __restrict__ in;  // this tick's ring-buffer slot (read and cleared)
  int64_t* __restrict__ v;
  int64_t* __restrict__ u;
  const int64_t* __restrict__ bias;
  const int64_t* __restrict__ beta;
  const int64_t* __restrict__ alpha;
  const int64_t* __restrict__ vth;
  int32_t* __restrict__ membrane;  // LI: this tick's row of the membrane record
  int64_t first, n, db, smin, smax;
};

// One tick of one population (engine.py step 1); spiking neurons' global indices are appended to
// `fired` (capacity: every neuron), `n_fired` of them so far.  UNI: every neuron of the
// population has the same bias, decays and threshold (read once: the per-neuron parameter
// arrays are not streamed every tick, which is most of the update's memory traffic).
template <typename Acc, bool CUBA, bool SPIKING, bool SUBTRACT, bool UNI>
void update(const Params<Acc>& p, int64_t* fired, int64_t& n_fired, std::vector<uint8_t>& flag) {
  uint8_t* __restrict__ s = flag.data();
  if (p.n <= 0) return;
  const int64_t alpha0 = p.alpha[0], beta0 = p.beta[0], bias0 = p.bias[0], vth0 = p.vth[0];
  for (int64_t i = 0; i < p.n; ++i) {  // branch-free, so the compiler can vectorise it
    int64_t x = p.in[i];
    p.in[i] = 0;
    const int64_t beta = UNI ? beta0 : p.beta[i], bias = UNI ? bias0 : p.bias[i];
    const int64_t vth = UNI ? vth0 : p.vth[i];
    if constexpr (CUBA) {
      const int64_t alpha = UNI ? alpha0 : p.alpha[i];
      const int64_t uu = sat(((p.u[i] * alpha) >> p.db) + x, p.smin, p.smax);
      p.u[i] = uu;
      x = uu;
    }
    int64_t vv = sat(((p.v[i] * beta) >> p.db) + x + bias, p.smin, p.smax);
    if constexpr (SPIKING) {
      const int64_t f = vv >= vth;
      vv = SUBTRACT ? vv - f * vth : (f ? 0 : vv);
      s[i] = static_cast<uint8_t>(f);
    } else {
      p.membrane[i] = static_cast<int32_t>(vv);
    }
    p.v[i] = vv;
  }
  if constexpr (SPIKING) {  // compaction: 8 flags per 64-bit word, set bytes found by ctz
    int64_t* out = fired + n_fired;
    int64_t k = 0, i = 0;
    for (; i + 8 <= p.n; i += 8) {  // a few percent of the neurons fire per tick
      uint64_t w;
      std::memcpy(&w, s + i, sizeof w);
      while (w) {
        const int byte = __builtin_ctzll(w) >> 3;
        out[k++] = p.first + i + byte;
        w &= ~(uint64_t{0xFF} << (8 * byte));
      }
    }
    for (; i < p.n; ++i) {
      out[k] = p.first + i;
      k += s[i];
    }
    n_fired += k;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(
    at::TensorList arrays, at::IntArrayRef scalars, const at::Tensor& input) {
  TORCH_CHECK(static_cast<int64_t>(arrays.size()) == N_ARRAYS, "spinnaker run: expected ",
              static_cast<int64_t>(N_ARRAYS), " arrays, got ", arrays.size());
  TORCH_CHECK(static_cast<int64_t>(scalars.size()) == N_SCALARS, "spinnaker run: expected ",
              static_cast<int64_t>(N_SCALARS), " scalars");
  std::vector<const int64_t*> a(N_ARRAYS, nullptr);
  for (int i = 0; i < N_ARRAYS; ++i) {
    const at::Tensor& t = arrays[i];
    TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "spinnaker run: array ", i,
                " must be a contiguous CPU tensor");
    if (i == SIM_WORD) {
      TORCH_CHECK(t.scalar_type() == at::kInt, "spinnaker run: array ", i, " must be int32");
    } else {
      TORCH_CHECK(t.scalar_type() == at::kLong, "spinnaker run: array ", i, " must be int64");
      a[i] = t.data_ptr<int64_t>();
    }
  }
  TORCH_CHECK(arrays[SIM_WORD].numel() % 2 == 0, "spinnaker run: sim_word must be [words, 2]");
  const int32_t* sim_word = arrays[SIM_WORD].data_ptr<int32_t>();  // (off, val) pairs
  TORCH_CHECK(input.dim() == 3 && input.scalar_type() == at::kLong && input.is_contiguous(),
              "spinnaker run: input must be contiguous int64 [T, B, S]");
  const int64_t T = input.size(0), B = input.size(1), S = input.size(2);
  const int64_t N = scalars[N_NEURONS], n_li = scalars[N_LI], latency = scalars[LATENCY];
  const int64_t H = kSlots * scalars[MAX_STAGES] + 1;
  const int64_t cap = scalars[LINK_CAPACITY] < 0 ? INT64_MAX : scalars[LINK_CAPACITY];
  const int64_t db = scalars[DECAY_BITS], smin = scalars[STATE_MIN], smax = scalars[STATE_MAX];
  const int64_t P = arrays[POP_SIZE].numel(), V = arrays[V_KIND].numel();
  // Ring slots in use.  Deliveries of tick t come after its neuron update, which consumed slot
  // t mod 16, so with 16 slots a word of delay d (offset d * N + target, 1 <= d <= 16) is read at
  // tick t + d.  When every word's delay is between 1 and d_max, slots = the next power of two
  // >= d_max gives the same arrival ticks in a smaller buffer (W3: delays 1, one slot of N that
  // stays in cache instead of 16).  A delay-0 word (read 16 ticks later) keeps the 16 slots.
  int32_t max_off = 0, min_off = INT32_MAX;
  const int64_t n_words = arrays[SIM_WORD].numel() / 2;
  for (int64_t w = 0; w < n_words; ++w) {
    max_off = std::max(max_off, sim_word[2 * w]);
    min_off = std::min(min_off, sim_word[2 * w]);
  }
  int64_t slots = kSlots;
  if (N > 0 && n_words > 0 && min_off >= N) {
    slots = 1;
    while (slots < kSlots && slots < max_off / N) slots *= 2;
  }
  const int64_t ticks = T + latency, R = slots * N;
  const int64_t* x = input.data_ptr<int64_t>();

  const int64_t *pop_start = a[POP_START], *pop_size = a[POP_SIZE], *pop_offset = a[POP_OFFSET],
                *pop_spiking = a[POP_SPIKING], *pop_cuba = a[POP_CUBA],
                *pop_subtract = a[POP_SUBTRACT], *pop_li_col = a[POP_LI_COL];
  const int64_t *bias = a[BIAS], *beta = a[BETA_M], *alpha = a[ALPHA_M], *vth = a[VTH];
  const int64_t* src_start = a[SRC_START];
  const int64_t *v_kind = a[V_KIND], *v_pop = a[V_POP], *v_lo = a[V_LO], *v_n = a[V_N],
                *v_src_n = a[V_SRC_N], *v_ext_base = a[V_EXT_BASE];
  const int64_t *tree_ptr = a[TREE_PTR], *tree_link = a[TREE_LINK], *tree_parent = a[TREE_PARENT];
  const int64_t *dest_ptr = a[DEST_PTR], *dest_node = a[DEST_NODE], *dest_kind = a[DEST_KIND],
                *dest_target = a[DEST_TARGET], *dest_vertex = a[DEST_VERTEX];
  const int64_t *mat_rowbase = a[MAT_ROWBASE], *mat_stride = a[MAT_STRIDE],
                *row_start = a[ROW_START], *ext_mask = a[EXT_MASK];
  const int64_t *blk_start = a[BLK_START], *v_countbase = a[V_COUNTBASE];
  const int64_t n_count = arrays[BLK_START].numel();
  // every membrane entry is written: each LI population runs exactly T ticks
  at::Tensor membranes_t = at::empty({T, B, n_li}, at::kInt);
  at::Tensor counters_t = at::zeros({N_COUNTERS}, at::kLong);
  at::Tensor per_vertex_t = at::zeros({2, V}, at::kLong);
  at::Tensor atom_count_t = at::zeros({n_count}, at::kLong);
  int32_t* membranes = membranes_t.data_ptr<int32_t>();
  int64_t* cnt = counters_t.data_ptr<int64_t>();
  int64_t* recv_count = per_vertex_t.data_ptr<int64_t>();
  int64_t* event_count = recv_count + V;
  int64_t* atom_count = atom_count_t.data_ptr<int64_t>();

  std::vector<int64_t> record;
  // the ring buffers accumulate in 32 bits when no slot can exceed them (NARROW: the sum of
  // |weight << shift| over every neuron's synapses, times the largest input count, fits), else
  // in 64 bits; either way the sums are exact
  auto simulate = [&](auto tag) {
    using Acc = decltype(tag);
    std::vector<int64_t> v(N), u(N);
    std::vector<Acc> ring(R);
    int64_t max_pop = 0;
    for (int64_t p = 0; p < P; ++p) max_pop = std::max(max_pop, pop_size[p]);
    std::vector<uint8_t> flag(max_pop);
    std::vector<int64_t> fired(N), link_cnt(scalars[N_LINKS], 0), touched, passes, atoms, got;
    std::vector<uint8_t> uniform(P, 1);  // population parameters all equal (update<..., UNI>)
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t i = pop_start[p] + 1; i < pop_start[p] + pop_size[p]; ++i) {
        const int64_t j = pop_start[p];
        if (bias[i] != bias[j] || beta[i] != beta[j] || alpha[i] != alpha[j] || vth[i] != vth[j]) {
          uniform[p] = 0;
          break;
        }
      }
    }
    int64_t n_fired = 0;
    std::vector<int64_t> ext_index(V, -1);
    int64_t n_ext = 0;
    for (int64_t i = 0; i < V; ++i)
      if (v_kind[i] == KIND_EXT) ext_index[i] = n_ext++;
    std::vector<std::vector<int64_t>> pending(n_ext * H);

    for (int64_t b = 0; b < B; ++b) {
      std::fill(v.begin(), v.end(), 0);
      std::fill(u.begin(), u.end(), 0);
      std::fill(ring.begin(), ring.end(), 0);
      for (auto& q : pending) q.clear();
      for (int64_t t = 0; t < ticks; ++t) {
        // 1. neuron update
        const int64_t slot0 = (t & (slots - 1)) * N;
        Acc* rs = ring.data() + slot0;
        n_fired = 0;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t off = pop_offset[p], s0 = pop_start[p], n = pop_size[p];
          if (t < off || t >= off + T) {  // not running: drop what arrives (never read)
            std::fill(rs + s0, rs + s0 + n, Acc{0});
            continue;
          }
          int32_t* mem = pop_li_col[p] >= 0
                             ? membranes + ((t - off) * B + b) * n_li + pop_li_col[p] : nullptr;
          const Params<Acc> prm{rs + s0, v.data() + s0, u.data() + s0, bias + s0, beta + s0,
                           alpha + s0, vth + s0, mem, s0, n, db, smin, smax};
          const int64_t before = n_fired;
          const int kind = (pop_cuba[p] ? 4 : 0) + (pop_spiking[p] ? 2 : 0) + (pop_subtract[p] ? 1 : 0);
          auto call = [&](auto uni) {
            constexpr bool U = decltype(uni)::value;
            int64_t* f = fired.data();
            switch (kind) {
              case 0: case 1: update<Acc, false, false, false, U>(prm, f, n_fired, flag); break;
              case 2: update<Acc, false, true, false, U>(prm, f, n_fired, flag); break;
              case 3: update<Acc, false, true, true, U>(prm, f, n_fired, flag); break;
              case 4: case 5: update<Acc, true, false, false, U>(prm, f, n_fired, flag); break;
              case 6: update<Acc, true, true, false, U>(prm, f, n_fired, flag); break;
              default: update<Acc, true, true, true, U>(prm, f, n_fired, flag); break;
            }
          };
          if (n > 0 && uniform[p]) call(std::true_type{}); else call(std::false_type{});
          for (int64_t i = before; i < n_fired; ++i) {
            record.push_back(t - off);
            record.push_back(b);
            record.push_back(fired[i]);
          }
          cnt[SPIKES] += n_fired - before;
          cnt[UPDATES] += n;
        }
        // 2. packets, vertex by vertex (`fired` is ascending: populations and slices in order)
        for (int64_t vid = 0; vid < V; ++vid) {
          const int64_t kind = v_kind[vid], lo = v_lo[vid], n = v_n[vid];
          atoms.clear();
          if (kind == KIND_NEURONS) {
            const int64_t p = v_pop[vid], off = pop_offset[p];
            if (t < off || t >= off + T || !pop_spiking[p]) continue;
            const int64_t g0 = pop_start[p] + lo;
            const int64_t* end = fired.data() + n_fired;
            const int64_t* it = std::lower_bound(static_cast<const int64_t*>(fired.data()), end, g0);
            for (; it != end && *it < g0 + n; ++it) atoms.push_back(*it - g0);
          } else if (kind == KIND_SOURCE) {
            if (t >= T) continue;
            const int64_t* xs = x + (t * B + b) * S + src_start[v_pop[vid]] + lo;
            for (int64_t i = 0; i < n; ++i)
              for (int64_t c = 0; c < xs[i]; ++c) atoms.push_back(i);
          } else {
            std::vector<int64_t>& due = pending[ext_index[vid] * H + t % H];
            atoms.swap(due);
            due.clear();
            std::sort(atoms.begin(), atoms.end());
          }
          const int64_t d0 = dest_ptr[vid], d1 = dest_ptr[vid + 1];
          const int64_t k = static_cast<int64_t>(atoms.size());
          if (k == 0 || d0 == d1) continue;
          cnt[PACKETS] += k;
          if (kind == KIND_EXT) cnt[EXT_PACKETS] += k;
          // the multicast tree, links in breadth-first order: a link passes the first packets
          // that reach it, up to its remaining capacity this tick
          const int64_t l0 = tree_ptr[vid], l1 = tree_ptr[vid + 1];
          passes.assign(l1 - l0, 0);
          for (int64_t q = 0; q < l1 - l0; ++q) {
            const int64_t par = tree_parent[l0 + q];
            const int64_t reach = par < 0 ? k : passes[par];
            const int64_t link = tree_link[l0 + q];
            const int64_t pq = std::min(reach, std::max<int64_t>(0, cap - link_cnt[link]));
            passes[q] = pq;
            if (link_cnt[link] == 0 && pq > 0) touched.push_back(link);
            link_cnt[link] += pq;
            cnt[HOPS] += pq;
            cnt[DROPPED] += reach - pq;
          }
          // deliveries: matrix targets (sorted first, in row-block order), then extensions
          int64_t dm = d0;
          while (dm < d1 && dest_kind[dm] == DEST_MATRIX) ++dm;
          got.resize(d1 - d0);
          bool whole = true;
          for (int64_t d = d0; d < d1; ++d) {
            const int64_t node = dest_node[d];
            got[d - d0] = node < 0 ? k : passes[node];
            recv_count[dest_vertex[d]] += got[d - d0];
            if (d < dm && got[d - d0] != k) whole = false;
          }
          if (dm > d0 && whole) {  // fast path: one packet's rows on all its cores are one block
            const int64_t* blk = blk_start + v_countbase[vid];
            int64_t* counts = atom_count + v_countbase[vid];
            for (int64_t q = 0; q < k; ++q) {
              const int64_t atom = atoms[q];
              if (q + 1 < k) {  // the next packet's rows: a random jump in memory, prefetched
                const int32_t* nw = sim_word + 2 * blk[atoms[q + 1]];  // whole (up to 32 lines)
                const int32_t* ne = sim_word + 2 * std::min(blk[atoms[q + 1] + 1],
                                                            blk[atoms[q + 1]] + 256);
                for (const int32_t* pw = nw; pw < ne; pw += 16) __builtin_prefetch(pw);
                if (q + 2 < k) __builtin_prefetch(blk + atoms[q + 2]);
              }
              ++counts[atom];
              const int32_t* wp = sim_word + 2 * blk[atom];
              const int32_t* we = sim_word + 2 * blk[atom + 1];
              if (slots == 1) {  // every offset is N + target (delay 1): no wrap to test
                Acc* __restrict__ r = ring.data();
                for (; wp < we; wp += 2) r[wp[0] - N] += wp[1];
              } else {
                for (; wp < we; wp += 2) {
                  int64_t idx = slot0 + wp[0];
                  if (idx >= R) idx -= R;
                  ring[idx] += wp[1];
                }
              }
            }
          } else if (dm > d0) {  // some cores miss some packets: row by row
            int64_t rows = 0;
            for (int64_t d = d0; d < dm; ++d) {
              const int64_t m = dest_target[d], rowbase = mat_rowbase[m], rstride = mat_stride[m];
              int64_t events = 0;
              for (int64_t q = 0; q < got[d - d0]; ++q) {
                const int64_t r = rowbase + atoms[q] * rstride;
                const int64_t w0 = row_start[r], w1 = row_start[r + 1];
                if (w1 == w0) continue;
                ++rows;
                events += w1 - w0;
                for (int64_t w = w0; w < w1; ++w) {
                  int64_t idx = slot0 + sim_word[2 * w];
                  if (idx >= R) idx -= R;
                  ring[idx] += sim_word[2 * w + 1];
                }
              }
              cnt[EVENTS] += events;
              event_count[dest_vertex[d]] += events;
            }
            cnt[ROWS] += rows;
          }
          for (int64_t d = dm; d < d1; ++d) {  // delay extensions: queue t + 16 j per stage j
            const int64_t g = got[d - d0], target = dest_target[d];
            const int64_t eb = v_ext_base[target], n_src = v_src_n[target];
            const int64_t stages = v_n[target] / n_src, e = ext_index[target];
            for (int64_t q = 0; q < g; ++q) {
              const int64_t mask = ext_mask[eb + atoms[q]];
              for (int64_t j = 1; j <= stages; ++j)
                if ((mask >> j) & 1)
                  pending[e * H + (t + kSlots * j) % H].push_back((j - 1) * n_src + atoms[q]);
            }
          }
        }
        for (int64_t link : touched) link_cnt[link] = 0;
        touched.clear();
      }
      cnt[TICKS] += ticks;
    }
  };
  if (scalars[NARROW]) simulate(int32_t{}); else simulate(int64_t{});
  at::Tensor spikes_t = at::empty({static_cast<int64_t>(record.size() / 3), 3}, at::kLong);
  std::copy(record.begin(), record.end(), spikes_t.data_ptr<int64_t>());
  return {spikes_t, membranes_t, counters_t, per_vertex_t, atom_count_t};
}

}  // namespace

TORCH_LIBRARY(neuro_spinnaker, m) { m.def("run", &run); }
