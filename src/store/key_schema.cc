#include "store/key_schema.h"

namespace streamrec::store {

const char* CfName(Cf cf) {
  switch (cf) {
    case Cf::kLog: return "log";
    case Cf::kDedup: return "dedup";
    case Cf::kState: return "state";
    case Cf::kItems: return "items";
    case Cf::kBadRows: return "badrows";
    case Cf::kMeta: return "meta";
    case Cf::kCatalog: return "catalog";
    case Cf::kAuth: return "auth";
    case Cf::kCount: break;
  }
  return "?";
}

void AppendU32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
void AppendU64(std::string& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
uint32_t ReadU32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
uint64_t ReadU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

namespace {
std::string Tagged(char tag, std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(2 + a.size() + b.size());
  k.push_back(tag);
  k.append(a);
  k.push_back('\0');
  k.append(b);
  return k;
}
}  // namespace

std::string LogKey(uint32_t partition, uint64_t seq) {
  std::string k;
  k.reserve(12);
  AppendU32(k, partition);
  AppendU64(k, seq);
  return k;
}
std::string LogPartitionPrefix(uint32_t partition) {
  std::string k;
  AppendU32(k, partition);
  return k;
}
std::string DedupKey(std::string_view tenant, std::string_view event_id) {
  std::string k(tenant);
  k.push_back('\0');
  k.append(event_id);
  return k;
}
std::string UserStateKey(std::string_view tenant, std::string_view user) {
  return Tagged('u', tenant, user);
}
std::string RecsKey(std::string_view tenant, std::string_view user) {
  return Tagged('r', tenant, user);
}
std::string OffsetKey(std::string_view consumer, uint32_t partition) {
  std::string k = Tagged('o', consumer, {});
  AppendU32(k, partition);
  return k;
}
std::string ItemKey(std::string_view tenant, std::string_view item) {
  return Tagged('i', tenant, item);
}
std::string ItemOffsetKey(uint32_t partition) {
  std::string k = "c";
  AppendU32(k, partition);
  return k;
}
std::string BadRowKey(uint64_t ms, uint64_t seq) {
  std::string k;
  AppendU64(k, ms);
  AppendU64(k, seq);
  return k;
}

}  // namespace streamrec::store
