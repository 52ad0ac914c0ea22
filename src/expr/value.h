// Value: the runtime datum of the expression language, and Type: its static description.
// Lists, maps and long strings live in shared immutable storage so that copying a Value (one per
// field access, per list element) costs a reference count, never a deep copy. Short strings (ids,
// slugs, event types) are held inline: copying them is cheaper than a reference count, and they
// need no allocation.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
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
  // Implicit by design: literals and containers convert to values.
  // NOLINTBEGIN(google-explicit-constructor)
  // Both payload words are always set, so that CopyPayload copies no indeterminate bytes.
  Value() noexcept : words_{0, 0} {}  //!< null
  Value(std::nullptr_t) noexcept : words_{0, 0} {}
  Value(bool b) noexcept : rep_(Rep::kBool), words_{0, 0} { b_ = b; }
  Value(int v) noexcept : rep_(Rep::kInt), words_{0, 0} { i_ = v; }
  Value(int64_t v) noexcept : rep_(Rep::kInt), words_{0, 0} { i_ = v; }
  Value(double v) noexcept : rep_(Rep::kDouble), words_{0, 0} { d_ = v; }
  Value(TimeMs t) noexcept : rep_(Rep::kTime), words_{0, 0} { t_ = t; }
  Value(const char* s) : Value(std::string_view(s)) {}
  Value(std::string_view s) { SetString(s); }
  Value(std::string s) {
    if (s.size() <= kMaxInline) {
      SetString(s);  // copied, not moved: `s` may own a heap buffer, inline strings never do
    } else {
      SetShared(&s_, Rep::kString, std::make_shared<std::string>(std::move(s)));
    }
  }
  // List and map storage is allocated non-const so that Unique*() may reuse it (see there).
  Value(List l) : Value(std::shared_ptr<const List>(std::make_shared<List>(std::move(l)))) {}
  Value(Map m) : Value(std::shared_ptr<const Map>(std::make_shared<Map>(std::move(m)))) {}
  Value(std::shared_ptr<const std::string> s) { SetShared(&s_, Rep::kString, std::move(s)); }
  Value(std::shared_ptr<const List> l) { SetShared(&l_, Rep::kList, std::move(l)); }
  Value(std::shared_ptr<const Map> m) { SetShared(&m_, Rep::kMap, std::move(m)); }
  // NOLINTEND(google-explicit-constructor)

  Value(const Value& other) { CopyFrom(other); }
  Value(Value&& other) noexcept { MoveFrom(other); }
  // Through a temporary: `other` may live inside this value (an element of its list).
  Value& operator=(const Value& other) {
    if (this != &other) *this = Value(other);
    return *this;
  }
  Value& operator=(Value&& other) noexcept {
    if (this == &other) return *this;
    if (IsShared()) {
      Value tmp(std::move(other));  // `other` may live inside what this value holds
      Destroy();
      MoveFrom(tmp);
    } else {
      Destroy();  // holds nothing `other` could be part of
      MoveFrom(other);
    }
    return *this;
  }
  ~Value() { Destroy(); }

  Kind kind() const { return rep_ == Rep::kInlineString ? Kind::kString : static_cast<Kind>(rep_); }
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
  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_double() const { return d_; }
  //! int or double as double. REQUIRES: is_number().
  double as_number() const { return is_int() ? static_cast<double>(as_int()) : as_double(); }
  TimeMs as_time() const { return t_; }
  //! NOTE: a short string lives inside the Value: the view is valid while this Value is neither
  //! changed nor moved (not only while some copy of it lives).
  std::string_view as_string() const {
    return rep_ == Rep::kInlineString ? std::string_view(inline_.chars, inline_.size)
                                      : std::string_view(*s_);
  }
  const List& as_list() const { return *l_; }
  const Map& as_map() const { return *m_; }

  //! The map entry's value, or nullptr when absent. REQUIRES: is_map().
  const Value* Find(std::string_view key) const;

  //! Copy-on-write reuse: the storage of this list / map for updating in place when this Value
  //! holds the only reference to it (nobody else can observe the change), else nullptr (also
  //! for other kinds). Lets a hot path refill last event's record instead of allocating a new
  //! one. NOTE: only for storage created by the constructors above (a shared_ptr to a genuinely
  //! const object passed in must not be written through).
  List* UniqueList() { return rep_ == Rep::kList ? Unique(l_) : nullptr; }
  Map* UniqueMap() { return rep_ == Rep::kMap ? Unique(m_) : nullptr; }
  //! Makes this value null, releasing what it held.
  void Reset() noexcept { Destroy(); }
  //! Makes this value the string `s`, likewise in the buffer it already holds when that is a
  //! string nobody else holds (a field refilled event after event allocates once).
  void AssignString(std::string_view s);

  //! Deep structural equality; 1 == 1.0 (numbers compare by value).
  friend bool operator==(const Value& a, const Value& b);

 private:
  // Kind's order, then the inline string.
  enum class Rep : uint8_t {
    kNull,
    kBool,
    kInt,
    kDouble,
    kString,
    kList,
    kMap,
    kTime,
    kInlineString
  };
  //! Strings up to 15 bytes are inline: no allocation, and copied as two words.
  static constexpr size_t kMaxInline = 15;
  struct InlineString {
    char chars[kMaxInline];
    uint8_t size;
  };
  static_assert(sizeof(InlineString) == 2 * sizeof(uint64_t));

  template <typename T>
  void SetShared(std::shared_ptr<const T>* slot, Rep rep,
                 std::type_identity_t<std::shared_ptr<const T>> p) {
    new (slot) std::shared_ptr<const T>(std::move(p));
    rep_ = rep;
  }
  void SetString(std::string_view s);
  //! REQUIRES: s.size() <= kMaxInline, and this value holds nothing shared. `s` may be this
  //! value's own text.
  void SetInline(std::string_view s) {
    InlineString text{};
    if (!s.empty()) std::memcpy(text.chars, s.data(), s.size());
    text.size = static_cast<uint8_t>(s.size());
    inline_ = text;
    rep_ = Rep::kInlineString;
  }
  bool IsShared() const { return rep_ == Rep::kString || rep_ == Rep::kList || rep_ == Rep::kMap; }
  // Inline here: values are copied, moved and dropped per field access and list element, and
  // most are plain (null, bool, numbers, time) or short strings, whose payload is plain bytes
  // (copied as two words); only shared storage takes the out-of-line path.
  void CopyFrom(const Value& other) {
    if (other.IsShared()) {
      CopyShared(other);
    } else {
      CopyPayload(other);
    }
    rep_ = other.rep_;
  }
  //! Leaves `other` null.
  void MoveFrom(Value& other) noexcept {
    if (other.IsShared()) {
      MoveShared(other);
      return;
    }
    CopyPayload(other);
    rep_ = other.rep_;
    other.rep_ = Rep::kNull;
  }
  //! The payload bytes of a value that holds nothing shared (whichever member is active).
  void CopyPayload(const Value& other) noexcept {
    std::memcpy(&words_, &other.words_, sizeof words_);
  }
  void Destroy() noexcept {
    if (IsShared()) {
      DestroyShared();
    } else {
      rep_ = Rep::kNull;  // owns nothing
    }
  }
  void CopyShared(const Value& other);
  void MoveShared(Value& other) noexcept;
  void DestroyShared() noexcept;
  template <typename T>
  static T* Unique(const std::shared_ptr<const T>& p) {
    if (!p || p.use_count() != 1) return nullptr;
    // Pairs with the release of the last other owner's decrement: its reads happen before our
    // writes.
    std::atomic_thread_fence(std::memory_order_acquire);
    return const_cast<T*>(p.get());
  }

  Rep rep_ = Rep::kNull;
  union {
    bool b_;
    int64_t i_;
    double d_;
    TimeMs t_;
    std::shared_ptr<const std::string> s_;
    std::shared_ptr<const List> l_;
    std::shared_ptr<const Map> m_;
    InlineString inline_;
    uint64_t words_[2];  // the whole payload (CopyPayload), and zeroed by the constructors
  };
};

struct MapEntry {
  std::string key;
  Value value;
};

//! A result read where it lies, without making a Value (Node::PeekString): a string's text
//! (valid while what holds it is unchanged), null, or kUnknown (anything else, or a node that
//! cannot tell that way: evaluate it instead).
struct StringPeek {
  enum Kind : uint8_t { kUnknown, kNull, kString } kind = kUnknown;
  std::string_view text;
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
