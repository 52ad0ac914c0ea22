#include "models/session_knn.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <list>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/string_hash.h"

namespace streamrec::models {
namespace {

using common::StringHash;

constexpr uint32_t kMagic = 0x314e4b53;  // "SKN1" little-endian

void PutU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void PutString(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Bounds-checked reader over a snapshot.
struct Reader {
  std::string_view in;
  bool ok = true;
  template <typename T>
  T Get() {
    T v{};
    if (in.size() < sizeof(T)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data(), sizeof(T));
    in.remove_prefix(sizeof(T));
    return v;
  }
  std::string GetString() {
    uint32_t n = Get<uint32_t>();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
  std::vector<std::string> GetList() {
    uint32_t n = Get<uint32_t>();
    std::vector<std::string> out;
    if (!ok || n > in.size()) {  // every string takes >= 4 bytes: a cheap sanity bound
      ok = false;
      return out;
    }
    out.reserve(n);
    for (uint32_t i = 0; i < n && ok; ++i) out.push_back(GetString());
    return out;
  }
};

}  // namespace

struct SessionKnn::Impl {
  explicit Impl(SessionKnnOptions o) : options(o) {
    options.k = std::max<size_t>(options.k, 1);
    options.sample_size = std::max<size_t>(options.sample_size, options.k);
    options.max_sessions = std::max<size_t>(options.max_sessions, 1);
    options.max_session_length = std::max<size_t>(options.max_session_length, 1);
    if (options.kind == SessionKnnOptions::Kind::kVsknn && options.position_decay > 0) {
      by_distance.resize(options.max_session_length);
      for (size_t d = 0; d < by_distance.size(); ++d) {
        by_distance[d] = std::exp(-static_cast<double>(d) / options.position_decay);
      }
    }
  }

  // Vote factor exp(-d / position_decay) of an item d places from the neighbour's anchor item;
  // 1 when position_decay is off. Snapshots may hold longer sessions than max_session_length.
  double PositionWeight(size_t j, size_t anchor) const {
    if (by_distance.empty()) return 1.0;
    const size_t d = j > anchor ? j - anchor : anchor - j;
    return d < by_distance.size() ? by_distance[d]
                                  : std::exp(-static_cast<double>(d) / options.position_decay);
  }

  struct Session {
    uint64_t seq = 0;
    std::vector<uint32_t> items;  // distinct, in order of first click
  };
  struct Item {
    std::string id;
    uint32_t df = 0;              // indexed sessions containing the item
    std::deque<uint64_t> recent;  // seqs of its most recent sessions, ascending, <= sample_size
  };
  struct OpenSession {
    std::string id;
    std::vector<std::string> clicks;
  };

  SessionKnnOptions options;
  std::vector<double> by_distance;  // PositionWeight's table; empty when off
  mutable std::shared_mutex mu;
  std::deque<Session> sessions;  // ascending seq; sessions[i].seq == first_seq + i
  uint64_t first_seq = 0, next_seq = 0;
  std::vector<Item> items;
  std::vector<uint32_t> free_ids;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> ids;
  std::list<OpenSession> open;  // most recently updated first
  std::unordered_map<std::string, std::list<OpenSession>::iterator, StringHash, std::equal_to<>>
      open_index;

  uint32_t Intern(std::string_view item) {
    auto it = ids.find(item);
    if (it != ids.end()) return it->second;
    uint32_t id;
    if (!free_ids.empty()) {
      id = free_ids.back();
      free_ids.pop_back();
    } else {
      id = static_cast<uint32_t>(items.size());
      items.emplace_back();
    }
    items[id].id = std::string(item);
    ids.emplace(items[id].id, id);
    return id;
  }

  void AddLocked(std::span<const std::string> clicks) {
    Session s;
    s.seq = next_seq;
    // The newest distinct items are kept when a session is too long.
    std::unordered_set<std::string_view> seen;
    std::vector<std::string_view> distinct;
    for (auto it = clicks.rbegin(); it != clicks.rend(); ++it) {
      if (distinct.size() >= options.max_session_length) break;
      if (!it->empty() && seen.insert(*it).second) distinct.push_back(*it);
    }
    if (distinct.empty()) return;
    std::reverse(distinct.begin(), distinct.end());
    ++next_seq;
    if (sessions.empty()) first_seq = s.seq;
    s.items.reserve(distinct.size());
    for (auto item : distinct) {
      uint32_t id = Intern(item);
      Item& entry = items[id];
      ++entry.df;
      entry.recent.push_back(s.seq);
      if (entry.recent.size() > options.sample_size) entry.recent.pop_front();
      s.items.push_back(id);
    }
    sessions.push_back(std::move(s));
    while (sessions.size() > options.max_sessions) EvictOldest();
  }

  void EvictOldest() {
    const Session& s = sessions.front();
    for (uint32_t id : s.items) {
      Item& entry = items[id];
      --entry.df;
      while (!entry.recent.empty() && entry.recent.front() <= s.seq) entry.recent.pop_front();
      if (entry.df == 0) {
        ids.erase(entry.id);
        entry = Item{};
        free_ids.push_back(id);
      }
    }
    sessions.pop_front();
    first_seq = sessions.empty() ? next_seq : sessions.front().seq;
  }

  void Clear() {
    sessions.clear();
    first_seq = next_seq = 0;
    items.clear();
    free_ids.clear();
    ids.clear();
    open.clear();
    open_index.clear();
  }

  std::vector<ScoredItem> RecommendLocked(std::span<const std::string> clicks, size_t n,
                                          std::span<const std::string> exclude) const {
    std::vector<ScoredItem> out;
    if (n == 0 || clicks.empty() || sessions.empty()) return out;
    const bool vector_mode = options.kind == SessionKnnOptions::Kind::kVsknn;
    // Query items: linear position weight p/L and last position (1-based) of each.
    struct QueryItem {
      double weight = 0;
      size_t last_pos = 0;
    };
    std::unordered_map<uint32_t, QueryItem> query;
    const size_t length = clicks.size();
    for (size_t p = 1; p <= length; ++p) {
      auto it = ids.find(std::string_view(clicks[p - 1]));
      if (it == ids.end()) continue;
      query[it->second] = {static_cast<double>(p) / static_cast<double>(length), p};
    }
    if (query.empty()) return out;
    // Distinct query items count, known or not, as cosine / V-SKNN normalise by them.
    std::unordered_set<std::string_view> distinct_clicks(clicks.begin(), clicks.end());
    const double query_size = static_cast<double>(distinct_clicks.size());

    // The sample_size most recent sessions sharing an item with the query. Each item keeps its
    // sample_size most recent sessions, so the union's newest sample_size are all here.
    std::vector<uint64_t> candidates;
    for (const auto& [id, q] : query) {
      const auto& recent = items[id].recent;
      candidates.insert(candidates.end(), recent.begin(), recent.end());
    }
    std::sort(candidates.begin(), candidates.end(), std::greater<>());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    if (candidates.size() > options.sample_size) candidates.resize(options.sample_size);

    struct Neighbor {
      const Session* session;
      double similarity;
      double decay;
      size_t anchor;  // index in session->items of the shared item the query clicked last
    };
    std::vector<Neighbor> neighbors;
    neighbors.reserve(candidates.size());
    for (uint64_t seq : candidates) {
      const Session& s = sessions[seq - first_seq];
      size_t shared = 0, newest_pos = 0, anchor = 0;
      double weight_sum = 0;
      for (size_t j = 0; j < s.items.size(); ++j) {
        auto it = query.find(s.items[j]);
        if (it == query.end()) continue;
        ++shared;
        weight_sum += it->second.weight;
        if (it->second.last_pos > newest_pos) newest_pos = it->second.last_pos, anchor = j;
      }
      if (shared == 0) continue;
      if (vector_mode) {
        // Dot product of the weighted query and the binary neighbour, normalised by the query's
        // distinct items; the vote decays with how far back the newest shared item is.
        double similarity = weight_sum / query_size;
        double decay = 1.0 / static_cast<double>(length - newest_pos + 1);
        neighbors.push_back({&s, similarity, decay, anchor});
      } else {
        double similarity = static_cast<double>(shared) /
                            std::sqrt(query_size * static_cast<double>(s.items.size()));
        neighbors.push_back({&s, similarity, 1.0, anchor});
      }
    }
    // Ties go to the more recent session (candidates are newest first; stable sort).
    auto by_similarity = [](const Neighbor& a, const Neighbor& b) {
      return a.similarity > b.similarity;
    };
    std::stable_sort(neighbors.begin(), neighbors.end(), by_similarity);
    if (neighbors.size() > options.k) neighbors.resize(options.k);

    std::unordered_set<uint32_t> excluded;
    for (const auto& e : exclude) {
      auto it = ids.find(std::string_view(e));
      if (it != ids.end()) excluded.insert(it->second);
    }
    const double total = static_cast<double>(sessions.size());
    const bool idf = vector_mode && options.idf_weighting > 0;
    std::unordered_map<uint32_t, double> scores;
    for (const auto& nb : neighbors) {
      const double vote = nb.similarity * nb.decay;
      const auto& session_items = nb.session->items;
      for (size_t j = 0; j < session_items.size(); ++j) {
        const uint32_t id = session_items[j];
        if (excluded.contains(id)) continue;
        double v = vote;
        if (idf) v *= 1 + options.idf_weighting * std::log(total / items[id].df);
        v *= PositionWeight(j, nb.anchor);
        scores[id] += v;
      }
    }
    out.reserve(scores.size());
    for (const auto& [id, score] : scores) out.push_back({items[id].id, score});
    KeepBest(out, n);  // ties by item id, not by hash or interning order
    return out;
  }
};

SessionKnn::SessionKnn(SessionKnnOptions options) : impl_(std::make_unique<Impl>(options)) {}
SessionKnn::~SessionKnn() = default;

const SessionKnnOptions& SessionKnn::options() const { return impl_->options; }

void SessionKnn::AddSession(std::span<const std::string> items) {
  std::unique_lock lock(impl_->mu);
  impl_->AddLocked(items);
}

void SessionKnn::Observe(std::string_view session_id, std::string_view item) {
  if (item.empty()) return;
  std::unique_lock lock(impl_->mu);
  auto& im = *impl_;
  auto it = im.open_index.find(session_id);
  if (it == im.open_index.end()) {
    im.open.push_front({std::string(session_id), {}});
    it = im.open_index.emplace(im.open.front().id, im.open.begin()).first;
  } else if (it->second != im.open.begin()) {
    im.open.splice(im.open.begin(), im.open, it->second);
  }
  auto& clicks = it->second->clicks;
  clicks.emplace_back(item);
  // Only the newest distinct items would be indexed anyway; keep the buffer bounded.
  if (clicks.size() > 4 * im.options.max_session_length) {
    clicks.erase(clicks.begin(), clicks.begin() + static_cast<std::ptrdiff_t>(clicks.size() / 2));
  }
  while (im.open.size() > im.options.max_open_sessions) {
    auto& oldest = im.open.back();
    im.AddLocked(oldest.clicks);
    im.open_index.erase(oldest.id);
    im.open.pop_back();
  }
}

void SessionKnn::CloseSession(std::string_view session_id) {
  std::unique_lock lock(impl_->mu);
  auto& im = *impl_;
  auto it = im.open_index.find(session_id);
  if (it == im.open_index.end()) return;
  auto node = it->second;
  im.AddLocked(node->clicks);
  im.open_index.erase(it);
  im.open.erase(node);
}

std::vector<ScoredItem> SessionKnn::Recommend(std::span<const std::string> session, size_t n,
                                              std::span<const std::string> exclude) const {
  std::shared_lock lock(impl_->mu);
  return impl_->RecommendLocked(session, n, exclude);
}

std::vector<ScoredItem> SessionKnn::RecommendForSession(std::string_view session_id,
                                                        size_t n) const {
  std::shared_lock lock(impl_->mu);
  auto it = impl_->open_index.find(session_id);
  if (it == impl_->open_index.end()) return {};
  return impl_->RecommendLocked(it->second->clicks, n, {});
}

size_t SessionKnn::session_count() const {
  std::shared_lock lock(impl_->mu);
  return impl_->sessions.size();
}

size_t SessionKnn::item_count() const {
  std::shared_lock lock(impl_->mu);
  return impl_->ids.size();
}

uint64_t SessionKnn::ApproximateBytes() const {
  std::shared_lock lock(impl_->mu);
  const auto& im = *impl_;
  uint64_t bytes = 0;
  for (const auto& s : im.sessions) bytes += sizeof(s) + s.items.size() * sizeof(uint32_t);
  for (const auto& item : im.items) {
    bytes += sizeof(item) + item.id.capacity() + item.recent.size() * sizeof(uint64_t) +
             2 * sizeof(void*) + item.id.size();  // the id index entry
  }
  for (const auto& o : im.open) {
    bytes += sizeof(o) + o.id.size() + 2 * sizeof(void*);
    for (const auto& c : o.clicks) bytes += sizeof(c) + c.size();
  }
  return bytes;
}

std::string SessionKnn::Serialize() const {
  std::shared_lock lock(impl_->mu);
  const auto& im = *impl_;
  std::string out;
  PutU32(out, kMagic);
  PutU64(out, im.sessions.size());
  for (const auto& s : im.sessions) {
    PutU32(out, static_cast<uint32_t>(s.items.size()));
    for (uint32_t id : s.items) PutString(out, im.items[id].id);
  }
  // Least recently updated first, so that loading replays them in the same LRU order.
  PutU64(out, im.open.size());
  for (auto it = im.open.rbegin(); it != im.open.rend(); ++it) {
    PutString(out, it->id);
    PutU32(out, static_cast<uint32_t>(it->clicks.size()));
    for (const auto& c : it->clicks) PutString(out, c);
  }
  return out;
}

common::Status SessionKnn::Deserialize(std::string_view bytes) {
  Reader r{bytes};
  if (r.Get<uint32_t>() != kMagic || !r.ok) {
    return common::Status::Invalid("bad_snapshot", "not a session-kNN snapshot", "bytes");
  }
  std::vector<std::vector<std::string>> sessions;
  uint64_t count = r.Get<uint64_t>();
  for (uint64_t i = 0; i < count && r.ok; ++i) sessions.push_back(r.GetList());
  std::vector<Impl::OpenSession> open;
  uint64_t open_count = r.ok ? r.Get<uint64_t>() : 0;
  for (uint64_t i = 0; i < open_count && r.ok; ++i) {
    Impl::OpenSession o;
    o.id = r.GetString();
    o.clicks = r.GetList();
    open.push_back(std::move(o));
  }
  if (!r.ok || !r.in.empty()) {
    return common::Status::Invalid("bad_snapshot", "truncated or corrupt session-kNN snapshot",
                                   "bytes");
  }
  std::unique_lock lock(impl_->mu);
  auto& im = *impl_;
  im.Clear();
  for (const auto& s : sessions) im.AddLocked(s);
  for (auto& o : open) {
    im.open.push_front(std::move(o));
    im.open_index.emplace(im.open.front().id, im.open.begin());
  }
  return common::Status::Ok();
}

common::Status SessionKnn::Save(const std::string& path) const {
  std::string bytes = Serialize();
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) return common::Status::Internal("cannot write " + tmp);
  }
  // Rename so that a crash never leaves a half-written snapshot under `path`.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return common::Status::Internal("cannot rename " + tmp + " to " + path);
  }
  return common::Status::Ok();
}

common::Status SessionKnn::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return common::Status::Make(common::Code::kNotFound, "file_not_found", "cannot open " + path,
                                "path");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return Deserialize(buf.str());
}

}  // namespace streamrec::models
