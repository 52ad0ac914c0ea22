#include "models/item_codec.h"

#include <bit>
#include <cstring>

namespace streamrec::models::internal {
namespace {

constexpr uint8_t kVersion = 1;
// A neighbour list longer than this cannot come from a sane checkpoint.
constexpr uint64_t kMaxNeighbors = 1 << 16;
constexpr uint64_t kMaxIdLength = 1 << 12;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutZigzag(std::string& out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

template <typename T>
void PutFixed(std::string& out, T v) {
  static_assert(std::endian::native == std::endian::little, "checkpoint format is little-endian");
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      auto byte = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  }
  bool Zigzag(int64_t& v) {
    uint64_t u;
    if (!Varint(u)) return false;
    v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  template <typename T>
  bool Fixed(T& v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Bytes(size_t n, std::string& out) {
    if (in_.size() - pos_ < n) return false;
    out.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

common::Status Corrupt(std::string what) {
  return common::Status::Make(common::Code::kInternal, "corrupt_item_checkpoint",
                              "item checkpoint: " + std::move(what));
}

}  // namespace

std::string EncodeItemRecord(const ItemRecord& record) {
  std::string out;
  out.reserve(32 + record.neighbors.size() * 12);
  out.push_back(static_cast<char>(kVersion));
  PutVarint(out, record.views);
  PutVarint(out, record.add_to_carts);
  PutVarint(out, record.purchases);
  PutZigzag(out, record.last_seen_ms);
  PutFixed(out, record.popularity);
  PutZigzag(out, record.as_of_ms);
  PutVarint(out, record.neighbors.size());
  for (const auto& n : record.neighbors) {
    PutVarint(out, n.item_id.size());
    out.append(n.item_id);
    PutFixed(out, n.weight);
  }
  return out;
}

common::Result<ItemRecord> DecodeItemRecord(std::string_view bytes) {
  if (bytes.empty()) return Corrupt("empty");
  if (static_cast<uint8_t>(bytes[0]) != kVersion) {
    return Corrupt("unknown version " + std::to_string(static_cast<uint8_t>(bytes[0])));
  }
  Reader r(bytes.substr(1));
  ItemRecord rec;
  uint64_t count = 0;
  if (!r.Varint(rec.views) || !r.Varint(rec.add_to_carts) || !r.Varint(rec.purchases) ||
      !r.Zigzag(rec.last_seen_ms) || !r.Fixed(rec.popularity) || !r.Zigzag(rec.as_of_ms) ||
      !r.Varint(count)) {
    return Corrupt("truncated header");
  }
  if (count > kMaxNeighbors) return Corrupt("too many neighbours");
  rec.neighbors.resize(count);
  for (auto& n : rec.neighbors) {
    uint64_t len = 0;
    if (!r.Varint(len) || len > kMaxIdLength || !r.Bytes(len, n.item_id) || !r.Fixed(n.weight)) {
      return Corrupt("truncated neighbour");
    }
  }
  if (!r.done()) return Corrupt("trailing bytes");
  return rec;
}

}  // namespace streamrec::models::internal
