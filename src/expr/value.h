// Value: the runtime datum of the expression language, and Type: its static description.
// Strings, lists and maps live in shared immutable storage so that copying a Value (one per
// field access, per list element) costs a reference count, never a deep copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace streamrec::expr {

//! Milliseconds since the Unix epoch, UTC. A distinct type so that `time - time` is a
//! duration (int) and `time == 5` is a type error rather than a silent unit mix-up.
struct TimeMs {
  int64_t ms = 0;
  friend bool operator==(TimeMs a, TimeMs b) { return a.ms == b.ms; }
};

class Value;
struct MapEntry;
using List = std::vector<Value>;
//! A record. Insertion order is kept (JSON objects round-trip); lookups scan, which beats
//! hashing for the 5–30 fields of an event, and field nodes cache the last position.
using Map = std::vector<MapEntry>;

enum class Kind : uint8_t { kNull, kBool, kInt, kDouble, kString, kList, kMap, kTime };
const char* KindName(Kind kind);

class Value {
 public:
  Value() = default;                                                               //!< null
  Value(std::nullptr_t) {}                                                         // NOLINT
  Value(bool b) : v_(b) {}                                                         // NOLINT
  Value(int v) : v_(int64_t{v}) {}                                                 // NOLINT
  Value(int64_t v) : v_(v) {}                                                      // NOLINT
  Value(double v) : v_(v) {}                                                       // NOLINT
  Value(TimeMs t) : v_(t) {}                                                       // NOLINT
  Value(const char* s) : v_(std::make_shared<const std::string>(s)) {}             // NOLINT
  Value(std::string_view s) : v_(std::make_shared<const std::string>(s)) {}        // NOLINT
  Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}  // NOLINT
  Value(List l) : v_(std::make_shared<const List>(std::move(l))) {}                // NOLINT
  Value(Map m) : v_(std::make_shared<const Map>(std::move(m))) {}                  // NOLINT
  Value(std::shared_ptr<const std::string> s) : v_(std::move(s)) {}                // NOLINT
  Value(std::shared_ptr<const List> l) : v_(std::move(l)) {}                       // NOLINT
  Value(std::shared_ptr<const Map> m) : v_(std::move(m)) {}                        // NOLINT

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_double() const { return kind() == Kind::kDouble; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_map() const { return kind() == Kind::kMap; }
  bool is_time() const { return kind() == Kind::kTime; }

  // REQUIRES: the matching is_*() holds.
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  //! int or double as double. REQUIRES: is_number().
  double as_number() const { return is_int() ? static_cast<double>(as_int()) : as_double(); }
  TimeMs as_time() const { return std::get<TimeMs>(v_); }
  const std::string& as_string() const { return *std::get<kStringIndex>(v_); }
  const List& as_list() const { return *std::get<kListIndex>(v_); }
  const Map& as_map() const { return *std::get<kMapIndex>(v_); }

  //! The map entry's value, or nullptr when absent. REQUIRES: is_map().
  const Value* Find(std::string_view key) const;

  //! Deep structural equality; 1 == 1.0 (numbers compare by value).
  friend bool operator==(const Value& a, const Value& b);

 private:
  static constexpr size_t kStringIndex = 4, kListIndex = 5, kMapIndex = 6;
  std::variant<std::monostate, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const List>, std::shared_ptr<const Map>, TimeMs>
      v_;
};

struct MapEntry {
  std::string key;
  Value value;
};

//! Text for to_string() and string concatenation: strings as they are, numbers in shortest
//! round-trip form, time as ISO 8601 UTC, lists and maps as JSON.
std::string ToText(const Value& value);

//! Static type. `any` defers checks to run time (JSON-ish event fields). Any value may be
//! null at run time whatever its static type (fields go missing), so null is no error.
class Type {
 public:
  enum class Tag : uint8_t { kAny, kNull, kBool, kInt, kDouble, kString, kList, kMap, kTime };

  Type() = default;  //!< any
  static Type Any() { return Type(Tag::kAny); }
  static Type Null() { return Type(Tag::kNull); }
  static Type Bool() { return Type(Tag::kBool); }
  static Type Int() { return Type(Tag::kInt); }
  static Type Double() { return Type(Tag::kDouble); }
  static Type String() { return Type(Tag::kString); }
  static Type Time() { return Type(Tag::kTime); }
  static Type ListOf(Type element);
  //! A map whose values all have one type (`map<any>` for a JSON object).
  static Type MapOf(Type value);
  //! A record with declared fields; accessing an undeclared field is a compile error.
  static Type Record(std::vector<std::pair<std::string, Type>> fields);

  Tag tag() const { return tag_; }
  bool is_any() const { return tag_ == Tag::kAny; }
  bool is(Tag tag) const { return tag_ == tag; }
  bool is_number() const { return tag_ == Tag::kInt || tag_ == Tag::kDouble; }
  //! List element or map value type (any when unknown).
  Type element() const;
  //! Declared fields of a record, nullptr for an open map.
  const std::vector<std::pair<std::string, Type>>* fields() const;
  //! Type of `this.name`: nullptr when a record lacks the field.
  const Type* Field(std::string_view name) const;

  //! "int", "list<string>", "{a: int, b: any}".
  std::string ToString() const;
  friend bool operator==(const Type& a, const Type& b);

 private:
  explicit Type(Tag tag) : tag_(tag) {}
  struct Detail {
    std::vector<std::pair<std::string, Type>> fields;
    std::vector<Type> element;  // one entry; a vector because Type is incomplete here
  };
  Tag tag_ = Tag::kAny;
  std::shared_ptr<const Detail> detail_;
};

//! Static type of a value (lists and maps typed by their first element / as map<any>).
Type TypeOf(const Value& value);

}  // namespace streamrec::expr
