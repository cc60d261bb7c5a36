// distributed.cc: process groups over libtorch's c10d (Gloo on the CPU,
// NCCL on CUDA builds compiled with HL_NCCL), rendezvous through a TCPStore,
// as torch.distributed does.
#include <chrono>
#include <cstdlib>
#include <memory>

#include "internal.h"

#ifdef HL_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef HL_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

struct hl_group_s {
#ifdef HL_WITH_GLOO
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef HL_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int32_t rank = 0, world = 1;

  // Runs a collective on whichever backend the group has and waits for it;
  // a failure or a timeout (a peer died or stalled) throws.
  template <typename F>
  void run(F f) {
#ifdef HL_WITH_NCCL
    if (nccl) {
      f(*nccl)->wait();
      return;
    }
#endif
#ifdef HL_WITH_GLOO
    if (gloo) {
      f(*gloo)->wait();
      return;
    }
#endif
    (void)f;
    throw hl::Error(HL_ERR_NOT_IMPLEMENTED, "process group has no backend");
  }
};

namespace {

bool loopback(const std::string &host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

[[noreturn, maybe_unused]] void unavailable(const char *what) {
  throw hl::Error(HL_ERR_NOT_IMPLEMENTED, std::string(what) +
                                              ": this hiddenlab shim was built without c10d Gloo support "
                                              "(install libgloo-dev and rebuild: make shim)");
}

// flatten copies tensors into one contiguous buffer (a bucket).
at::Tensor flatten(const std::vector<at::Tensor> &ts) {
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const auto &t : ts) flat.push_back(t.reshape(-1));
  return at::cat(flat);
}

// unflatten copies a bucket back into its tensors.
void unflatten(const at::Tensor &bucket, const std::vector<at::Tensor> &ts) {
  int64_t off = 0;
  for (const auto &t : ts) {
    const int64_t n = t.numel();
    t.copy_(bucket.narrow(0, off, n).view_as(t));
    off += n;
  }
}

}  // namespace

extern "C" {

hl_status hl_group_new(const char *host, int32_t port, int32_t rank, int32_t world, int32_t device_type,
                       int64_t timeout_ms, hl_group *out) {
  HL_TRY({
    if (host == nullptr || world < 1 || rank < 0 || rank >= world || port <= 0 || port > 65535)
      throw hl::Error(HL_ERR_VALUE, "process group: need 0 <= rank < world, a host and a port in 1..65535 (rank " +
                                        std::to_string(rank) + ", world " + std::to_string(world) + ", port " +
                                        std::to_string(port) + ")");
    auto timeout = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 300000);
    auto g = std::make_unique<hl_group_s>();
    g->rank = rank;
    g->world = world;
#ifdef HL_WITH_GLOO
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = static_cast<std::size_t>(world);
    so.waitWorkers = true;
    so.timeout = timeout;
    g->store = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    if (device_type == HL_CUDA) {
#ifdef HL_WITH_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(rank % std::max<int>(1, c10::cuda::device_count())));
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = timeout;
      g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, rank, world, no);
#else
      throw hl::Error(HL_ERR_NO_CUDA, "NCCL process groups need a CUDA build of the shim configured with -DHL_NCCL=ON");
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const char *iface = std::getenv("GLOO_SOCKET_IFNAME");
      if (iface != nullptr && *iface != '\0')
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
      else if (loopback(host))
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, world, opts);
    }
#else
    (void)device_type, (void)timeout;
    unavailable("process group");
#endif
    *out = g.release();
  })
}

void hl_group_free(hl_group g) { delete g; }

hl_status hl_group_allreduce(hl_group g, const hl_tensor *ts, int32_t n, int32_t average, int64_t bucket_bytes) {
  HL_TRY({
    if (g == nullptr) throw hl::Error(HL_ERR_VALUE, "null process group");
    auto all = hl::tensors(ts, n);
    if (all.empty()) return nullptr;
    c10::NoGradGuard ng;
    const int64_t limit = bucket_bytes > 0 ? bucket_bytes : (25 << 20);
    // Buckets of consecutive tensors of one dtype and device, up to limit bytes.
    size_t i = 0;
    while (i < all.size()) {
      std::vector<at::Tensor> bucket{all[i]};
      int64_t bytes = all[i].numel() * all[i].element_size();
      size_t j = i + 1;
      while (j < all.size() && all[j].scalar_type() == all[i].scalar_type() && all[j].device() == all[i].device() &&
             bytes + all[j].numel() * all[j].element_size() <= limit) {
        bytes += all[j].numel() * all[j].element_size();
        bucket.push_back(all[j++]);
      }
      std::vector<at::Tensor> flat{flatten(bucket)};
      g->run([&](auto &pg) { return pg.allreduce(flat, c10d::AllreduceOptions{}); });
      if (average) flat[0].div_(g->world);
      unflatten(flat[0], bucket);
      i = j;
    }
  })
}

hl_status hl_group_broadcast(hl_group g, const hl_tensor *ts, int32_t n, int32_t root) {
  HL_TRY({
    if (g == nullptr) throw hl::Error(HL_ERR_VALUE, "null process group");
    if (root < 0 || root >= g->world) throw hl::Error(HL_ERR_VALUE, "broadcast root out of range");
    auto all = hl::tensors(ts, n);
    if (all.empty()) return nullptr;
    c10::NoGradGuard ng;
    std::vector<at::Tensor> flat{flatten(all)};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    g->run([&](auto &pg) { return pg.broadcast(flat, bo); });
    unflatten(flat[0], all);
  })
}

hl_status hl_group_barrier(hl_group g) {
  HL_TRY({
    if (g == nullptr) throw hl::Error(HL_ERR_VALUE, "null process group");
    g->run([&](auto &pg) { return pg.barrier(c10d::BarrierOptions{}); });
  })
}

}  // extern "C"
