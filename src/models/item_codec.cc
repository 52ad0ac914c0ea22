#include "models/item_codec.h"

#include "common/byte_codec.h"

namespace streamrec::models::internal {

using common::PutFixed;
using common::PutSigned;
using common::PutString;
using common::PutVarint;

namespace {

constexpr uint8_t kVersion = 1;
// A neighbour list longer than this cannot come from a sane checkpoint.
constexpr uint64_t kMaxNeighbors = 1 << 16;
constexpr uint64_t kMaxIdLength = 1 << 12;

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
  PutSigned(out, record.last_seen_ms);
  PutFixed(out, record.popularity);
  PutSigned(out, record.as_of_ms);
  PutVarint(out, record.neighbors.size());
  for (const auto& n : record.neighbors) {
    PutString(out, n.item_id);
    PutFixed(out, n.weight);
  }
  return out;
}

common::Result<ItemRecord> DecodeItemRecord(std::string_view bytes) {
  if (bytes.empty()) return Corrupt("empty");
  if (static_cast<uint8_t>(bytes[0]) != kVersion) {
    return Corrupt("unknown version " + std::to_string(static_cast<uint8_t>(bytes[0])));
  }
  common::ByteReader r(bytes.substr(1));
  ItemRecord rec;
  rec.views = r.Varint();
  rec.add_to_carts = r.Varint();
  rec.purchases = r.Varint();
  rec.last_seen_ms = r.Signed();
  rec.popularity = r.Fixed<decltype(rec.popularity)>();
  rec.as_of_ms = r.Signed();
  uint64_t count = r.Count();
  if (!r.ok()) return Corrupt("truncated header");
  if (count > kMaxNeighbors) return Corrupt("too many neighbours");
  rec.neighbors.resize(count);
  for (auto& n : rec.neighbors) {
    n.item_id = r.String(kMaxIdLength);
    n.weight = r.Fixed<decltype(n.weight)>();
  }
  if (!r.ok()) return Corrupt("truncated neighbour");
  if (!r.done()) return Corrupt("trailing bytes");
  return rec;
}

}  // namespace streamrec::models::internal
