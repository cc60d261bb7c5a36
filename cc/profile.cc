// profile.cc: an operator profiler. While it is on, a global RecordFunction
// callback times every libtorch operator, autograd node and shim scope (the
// fused codebook op, AdamW) on every thread, and adds each one's total and
// self time (total less the time of the operators it called) to a table by
// name: PyTorch's key_averages() "self CPU" column, without the profiler's
// event lists. With shapes it keys operators by name and input sizes, as
// key_averages(group_by_input_shape=True) does.
#include <ATen/record_function.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <sstream>

#include "internal.h"

namespace {

struct Stat {
  int64_t calls = 0, self_ns = 0, total_ns = 0;
};

struct Table {
  std::mutex mu;
  bool on = false;
  at::CallbackHandle handle = 0;
  std::map<std::string, Stat> stats;
};

Table &table() {
  static Table *t = new Table();  // never destroyed: callbacks may run at exit
  return *t;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Frame : at::ObserverContext {
  int64_t start = 0;
  int64_t children = 0;  // time of the operators this one called
  Frame *parent = nullptr;
  std::string key;  // name and input shapes, when the table keys by them
};

// shape_key is fn's name followed by its tensor inputs' sizes
// ("aten::mm [2048, 128] [128, 384]"), a list's in braces ("aten::cat {
// [2, 3] [2, 3] }"); other inputs are left out.
std::string shape_key(const at::RecordFunction &fn) {
  std::ostringstream os;
  os << fn.name();
  const auto put = [&os](const at::Tensor &t) {
    os << " [";
    const auto sizes = t.sizes();
    for (size_t i = 0; i < sizes.size(); i++) os << (i ? ", " : "") << sizes[i];
    os << "]";
  };
  for (const c10::IValue &v : fn.inputs()) {
    if (v.isTensor() && v.toTensor().defined()) {
      put(v.toTensor());
    } else if (v.isTensorList()) {  // cat, stack: the list's sizes in braces
      os << " {";
      for (const at::Tensor &t : v.toTensorVector()) put(t);
      os << " }";
    }
  }
  return os.str();
}

// Read without the lock by the callbacks of one profile: set before the
// callback is added.
std::atomic<bool> keyed_by_shapes{false};

// The innermost open operator of this thread.
thread_local Frame *open_frame = nullptr;

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction &fn) {
  auto f = std::make_unique<Frame>();
  f->parent = open_frame;
  open_frame = f.get();
  if (keyed_by_shapes.load(std::memory_order_relaxed)) f->key = shape_key(fn);
  f->start = now_ns();
  return f;
}

void on_end(const at::RecordFunction &fn, at::ObserverContext *ctx) {
  const int64_t end = now_ns();
  auto *f = static_cast<Frame *>(ctx);
  if (f == nullptr) return;
  const int64_t total = end - f->start;
  // Frames end in the order they began on a thread; a frame that ends
  // elsewhere (not seen in libtorch's CPU operators) is counted alone.
  if (open_frame == f) open_frame = f->parent;
  if (f->parent != nullptr) f->parent->children += total;
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  Stat &s = f->key.empty() ? t.stats[fn.name()] : t.stats[f->key];
  s.calls++;
  s.total_ns += total;
  s.self_ns += total - f->children;
}

}  // namespace

extern "C" {

hl_status hl_profile_start(int32_t shapes) {
  HL_TRY({
    Table &t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    if (t.on) throw hl::Error(HL_ERR_VALUE, "the profiler is already on");
    t.stats.clear();
    keyed_by_shapes.store(shapes != 0);
    t.handle = at::addGlobalCallback(at::RecordFunctionCallback(on_start, on_end).needsInputs(shapes != 0));
    t.on = true;
  })
}

hl_status hl_profile_stop(void) {
  HL_TRY({
    Table &t = table();
    at::CallbackHandle h;
    {
      std::lock_guard<std::mutex> lock(t.mu);
      if (!t.on) throw hl::Error(HL_ERR_VALUE, "the profiler is not on");
      h = t.handle;
      t.on = false;
    }
    at::removeCallback(h);
  })
}

int64_t hl_profile_table(char *buf, int64_t cap) {
  std::string s;
  try {
    Table &t = table();
    std::ostringstream os;
    std::lock_guard<std::mutex> lock(t.mu);
    for (const auto &kv : t.stats) {
      os << kv.first << '\t' << kv.second.calls << '\t' << kv.second.self_ns << '\t' << kv.second.total_ns << '\n';
    }
    s = os.str();
  } catch (...) {
    s.clear();
  }
  return hl::copy_string(s, buf, cap);
}

}  // extern "C"
