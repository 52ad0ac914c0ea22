// Unit tests of the sink building blocks: templates, secrets, coalescing, the budget,
// config validation. The HTTP behaviour is in http_sinks_test.cc.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>

#include "sinks/coalescer.h"
#include "sinks/http_sink.h"
#include "sinks/shopify.h"
#include "sinks/sink.h"
#include "sinks/template.h"
#include "sinks/token_bucket.h"

namespace streamrec::sinks {
namespace {

namespace json = boost::json;

EnvLookup FakeEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    if (name == "TOKEN") return "s3cr\"et";
    return std::nullopt;
  };
}

Update MakeUpdate(std::string user, std::vector<std::string> ids) {
  Update u{"shop1", std::move(user), {}, "covisitation", 1714564800123};
  double score = 1.0;
  for (auto& id : ids) u.items.push_back({std::move(id), score /= 2});
  return u;
}

TEST(TemplateTest, JsonBodyEscapesByContext) {
  Secrets secrets;
  auto t = Template::Parse(
      R"({"u": {{user_id}}, "in": "id={{ user_id }}", "items": {{items_json}},)"
      R"( "text": "{{items_json}}", "scored": {{items_scored_json}}, "k": "{{env.TOKEN}}",)"
      R"( "k2": {{env.TOKEN}}, "at": "{{generated_at}}", "ms": {{generated_at_ms}}})",
      Template::Kind::kJsonBody, FakeEnv(), secrets, "body");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Update u = MakeUpdate("a\"b", {"p1", "p\"2"});
  json::value doc = json::parse(t->Render(u));  // must be valid JSON despite the quotes
  EXPECT_EQ(doc.at("u"), "a\"b");
  EXPECT_EQ(doc.at("in"), "id=a\"b");
  EXPECT_EQ(doc.at("items"), (json::array{"p1", "p\"2"}));
  EXPECT_EQ(doc.at("text"), R"(["p1","p\"2"])");
  EXPECT_EQ(doc.at("scored").at(0).at("id"), "p1");
  EXPECT_DOUBLE_EQ(doc.at("scored").at(1).at("score").as_double(), 0.25);
  EXPECT_EQ(doc.at("k"), "s3cr\"et");
  EXPECT_EQ(doc.at("k2"), "s3cr\"et");
  EXPECT_EQ(doc.at("at"), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(doc.at("ms"), 1714564800123);
}

TEST(TemplateTest, UrlAndHeaderKinds) {
  Secrets secrets;
  auto url = Template::Parse("/u/{{user_id}}?t={{tenant}}", Template::Kind::kUrl, FakeEnv(),
                             secrets, "url");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->Render(MakeUpdate("a b/c", {})), "/u/a%20b%2Fc?t=shop1");
  auto header = Template::Parse("Bearer {{env.TOKEN}} {{user_id}}", Template::Kind::kHeader,
                                FakeEnv(), secrets, "headers.Authorization");
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->Render(MakeUpdate("x\r\nEvil: 1", {})), "Bearer s3cr\"et xEvil: 1");
}

TEST(TemplateTest, RejectsUnknownPlaceholdersAndMissingSecrets) {
  Secrets secrets;
  auto bad = Template::Parse("{{user}}", Template::Kind::kJsonBody, FakeEnv(), secrets, "body");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field, "body");
  auto open = Template::Parse("{{user_id", Template::Kind::kJsonBody, FakeEnv(), secrets, "body");
  EXPECT_FALSE(open.ok());
  auto missing =
      Template::Parse("{{env.NOPE}}", Template::Kind::kHeader, FakeEnv(), secrets, "headers.X");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason, "missing_secret");
  EXPECT_NE(missing.status().message.find("NOPE"), std::string::npos);
}

TEST(SecretsTest, MasksRawAndEscapedForms) {
  Secrets secrets;
  secrets.Add("to\"ken 1");
  EXPECT_EQ(secrets.Mask("a to\"ken 1 b to\\\"ken 1 c to%22ken%201"), "a *** b *** c ***");
}

TEST(ShopifyTest, HandlesAreUniqueAndSafe) {
  EXPECT_EQ(ShopifyHandle("customer-", "12345"), "customer-12345");
  EXPECT_EQ(ShopifyHandle("customer-", "Bob@x"), "customer-_42ob_40x");
  EXPECT_NE(ShopifyHandle("c-", "A"), ShopifyHandle("c-", "a"));
}

TEST(RetryAfterTest, SecondsAndDates) {
  EXPECT_EQ(ParseRetryAfter("2"), 2.0);
  EXPECT_EQ(ParseRetryAfter(" 0.25 "), 0.25);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0);  // in the past
  EXPECT_FALSE(ParseRetryAfter("soon"));
  EXPECT_FALSE(ParseRetryAfter(""));
}

TEST(TokenBucketTest, BurstThenRestoreRate) {
  TokenBucket bucket(100, 1000);  // 10 pushes of 10 at once, then one per 10 ms
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(bucket.Acquire(10, [] { return false; }));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(secs, 0.09);
  EXPECT_LT(secs, 1.0);
  EXPECT_FALSE(bucket.Acquire(100, [] { return true; }));  // gives up, takes nothing
  bucket.Observe(0, 50, 100);                              // the server says: empty, 50 max, 100/s
  EXPECT_NEAR(bucket.SecondsUntil(10), 0.1, 0.02);
}

TEST(CoalescerTest, LatestWinsUnchangedSkippedAndBounded) {
  Coalescer c({.interval_ns = 1'000'000'000, .max_pending_users = 2, .max_tracked_users = 10});
  bool evicted = false;
  EXPECT_EQ(c.Offer(MakeUpdate("u1", {"a"}), 0, &evicted), Coalescer::Offered::kQueued);
  EXPECT_EQ(c.Offer(MakeUpdate("u1", {"b"}), 1, &evicted), Coalescer::Offered::kReplaced);
  int64_t next = 0;
  auto push = c.TakeDue(2, false, &next);
  ASSERT_TRUE(push);
  EXPECT_EQ(push->update.items[0].item_id, "b");
  // Same list as the one in flight: nothing to do.
  EXPECT_EQ(c.Offer(MakeUpdate("u1", {"b"}), 3, &evicted), Coalescer::Offered::kUnchanged);
  c.Done(push->key, true);
  EXPECT_EQ(c.Offer(MakeUpdate("u1", {"b"}), 4, &evicted), Coalescer::Offered::kUnchanged);
  // A new list waits for the interval unless flushing.
  EXPECT_EQ(c.Offer(MakeUpdate("u1", {"c"}), 5, &evicted), Coalescer::Offered::kQueued);
  EXPECT_FALSE(c.TakeDue(10, false, &next));
  EXPECT_EQ(next, 2 + 1'000'000'000);
  EXPECT_TRUE(c.TakeDue(10, true, &next));
  // Over max_pending_users the oldest pending user is evicted.
  c.Offer(MakeUpdate("u2", {"a"}), 20, &evicted);
  c.Offer(MakeUpdate("u3", {"a"}), 21, &evicted);
  EXPECT_FALSE(evicted);
  c.Offer(MakeUpdate("u4", {"a"}), 22, &evicted);
  EXPECT_TRUE(evicted);
  EXPECT_EQ(c.pending(), 2u);
  auto left = c.DrainAll();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].update.user_id, "u3");
}

TEST(CoalescerTest, ForgetsIdleUsersOverTheCap) {
  Coalescer c({.interval_ns = 0, .max_pending_users = 100, .max_tracked_users = 5});
  bool evicted = false;
  int64_t next = 0;
  for (int i = 0; i < 50; ++i) {
    c.Offer(MakeUpdate("u" + std::to_string(i), {"a"}), i, &evicted);
    auto p = c.TakeDue(i, false, &next);
    ASSERT_TRUE(p);
    c.Done(p->key, true);
  }
  EXPECT_LE(c.tracked(), 6u);
}

TEST(MakeSinkTest, ConfigErrorsNameTheField) {
  auto check = [](const char* text, const char* field) {
    auto sink = MakeSink(json::parse(text).as_object(), {.env = FakeEnv()});
    ASSERT_FALSE(sink.ok()) << text;
    EXPECT_EQ(sink.status().field, field) << sink.status().ToString();
  };
  check(R"({"type": "kafka"})", "type");
  check(R"({"type": "webhook"})", "url");
  check(R"({"type": "webhook", "url": "ftp://x"})", "url");
  check(R"({"type": "webhook", "url": "http://x/", "retires": {}})", "retires");
  check(R"({"type": "webhook", "url": "http://x/", "retry": {"max_attempts": 0}})",
        "retry.max_attempts");
  check(R"({"type": "webhook", "url": "http://x/", "headers": {"A": "{{env.NOPE}}"}})",
        "headers.A");
  check(R"({"type": "shopify", "shop": "my-shop"})", "token_env");
  check(R"({"type": "shopify", "shop": "bad shop!"})", "shop");
  auto ok = MakeSink(json::parse(R"({"type": "webhook", "url": "https://example.com/h",
                                     "retry": {"max_attempts": "3"}})")
                         .as_object(),
                     {.env = FakeEnv()});
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

}  // namespace
}  // namespace streamrec::sinks
