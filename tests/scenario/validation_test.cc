// Load-time validation: every error collected, each naming the step, the field and the column.
#include "scenario_test_util.h"

namespace streamrec::scenario::testing {
namespace {

std::vector<std::string> Errors(const std::string& yaml) {
  FakeModels models;
  TestSinks sinks;
  std::vector<std::string> out;
  for (const auto& e : Scenario::Validate(yaml, &models, &sinks.registry)) {
    out.push_back(e.ToString());
  }
  return out;
}

bool Has(const std::vector<std::string>& errors, const std::string& part) {
  for (const auto& e : errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string Join(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

TEST(ValidationTest, CollectsEveryErrorWithStepFieldAndColumn) {
  auto errors = Errors(R"Y(
name: broken
version: 2
steps:
  - {id: vars, type: set, vars: {user: "#input.user_id", slug: "lowr(#input.item_id)"}}
  - {id: f, type: filter, expr: "#input.tenat == 'x'"}
  - {id: f, type: filter, expr: "#user + 1"}
  - {id: w, type: window, kind: hopping, size: 5x, group_by: "#user",
     aggregate: {a: {median: "#slug"}, key: {count: "*"}}, output: win}
  - {id: r, type: recommend, model: nope, inputs: {items: "#user", color: "1"}, output: recs}
  - {id: s, type: split, cases: [{when: "#nothing", to: missing}], default: r}
  - {id: k, type: sink, sink: {type: kafka}}
  - {id: q, type: teleport}
)Y");
  EXPECT_TRUE(Has(errors, "step 'vars' field 'vars.slug': column 1: unknown function 'lowr'"))
      << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'f' field 'expr': column ")) << Join(errors);
  EXPECT_TRUE(Has(errors, "tenat")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'f' field 'id': duplicate step id")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'w' field 'kind': unknown window kind 'hopping'")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'w' field 'size': invalid duration '5x'")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'w' field 'aggregate.a': unknown aggregator 'median'"))
      << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'w' field 'aggregate.key': 'key' is reserved")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'r' field 'model': unknown model 'nope' (known: echo, fail, pop)"))
      << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'r' field 'inputs.items': must be a list, got string"))
      << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'r' field 'inputs.color': unknown input")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 's' field 'cases[0].when': column 1: ")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 's' field 'cases[0].to': no step 'missing'")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'k' field 'sink.type': unknown sink type 'kafka'")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'q' field 'type': unknown step type 'teleport'")) << Join(errors);
  EXPECT_GE(errors.size(), 14u) << Join(errors);
  EXPECT_TRUE(Has(errors, "(line 5)")) << Join(errors);
}

TEST(ValidationTest, LoadReturnsAllErrorsInOneStatus) {
  FakeModels models;
  auto s = Scenario::Load(R"Y(
name: x
steps:
  - {id: a, type: filter, expr: "1 +"}
  - {id: b, type: filter, expr: "'x'"}
)Y",
                          &models, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().reason, "invalid_scenario");
  EXPECT_NE(s.status().message.find("step 'a' field 'expr'"), std::string::npos);
  EXPECT_NE(s.status().message.find("\nstep 'b' field 'expr'"), std::string::npos)
      << s.status().message;
}

TEST(ValidationTest, VariablesAreTypedByTheStepsBeforeThem) {
  // #n is an int: comparing it with a string is a compile error; #later is not yet set.
  auto errors = Errors(R"Y(
name: typed
steps:
  - {id: a, type: set, vars: {n: "size(#input.item_id)"}}
  - {id: b, type: filter, expr: "#n == 'x'"}
  - {id: c, type: filter, expr: "#later == 1"}
  - {id: d, type: set, vars: {later: "1"}}
  - {id: w, type: window, size: 1m, group_by: "#input.user_id", aggregate: {ids: {list: "#input.item_id"}}, output: win}
  - {id: e, type: filter, expr: "size(#win.ids) > 0 && #win.nothing == 1"}
)Y");
  EXPECT_TRUE(Has(errors, "step 'b' field 'expr': column")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'c' field 'expr': column 1:")) << Join(errors);
  EXPECT_TRUE(Has(errors, "step 'e' field 'expr'")) << Join(errors);
  EXPECT_EQ(errors.size(), 3u) << Join(errors);
}

TEST(ValidationTest, StructureAndRoutes) {
  EXPECT_TRUE(Has(Errors("name: [1"), "invalid YAML"));
  EXPECT_TRUE(Has(Errors("- 1"), "a scenario is a YAML mapping"));
  EXPECT_TRUE(Has(Errors("name: x\nsteps: []"), "field 'steps'"));
  EXPECT_TRUE(Has(Errors("name: x\ncolour: red\nsteps: [{id: a, type: filter, expr: 'true'}]"),
                  "field 'colour': unknown key"));
  EXPECT_TRUE(Has(Errors("steps: [{id: a, type: filter, expr: 'true'}]"), "field 'name'"));
  EXPECT_TRUE(Has(Errors("name: x\nsteps: [{id: a, type: filter, exp: 'true'}]"),
                  "step 'a' field 'exp': unknown key"));
  auto cycle = Errors(R"Y(
name: loop
steps:
  - {id: a, type: set, vars: {x: "1"}}
  - {id: b, type: split, cases: [{when: "#x > 0", to: a}], default: end}
)Y");
  EXPECT_TRUE(Has(cycle, "step 'b' field 'next': routes back to 'a': a cycle")) << Join(cycle);
  EXPECT_TRUE(Has(Errors("name: x\nsteps: [{id: a, type: set, vars: {x: '1'}, next: a}]"),
                  "cannot route to itself"));
  EXPECT_TRUE(Has(Errors("name: x\nsteps: [{id: a, type: sink, sink: {type: fail, bad: 1}}]"),
                  "step 'a' field 'sink.bad': bad is not allowed"));
  EXPECT_TRUE(Has(Errors("name: x\nsteps: [{id: a, type: window, kind: session, size: 1m, "
                         "group_by: '#input.user_id', aggregate: {n: {count: '*'}}, output: w}]"),
                  "field 'gap': missing duration"));
  EXPECT_TRUE(Errors("name: ok\nsteps: [{id: a, type: filter, expr: 'true'}]").empty());
}

TEST(ValidationTest, CoalesceNamesAStepThatNoWindowFollows) {
  const std::string steps = R"Y(
steps:
  - {id: w, type: window, kind: sliding, size: 5m, group_by: "#input.user_id",
     aggregate: {n: {count: "*"}}, output: win}
  - {id: out, type: sink, sink: {type: memory}, value: "#win.n"}
)Y";
  EXPECT_TRUE(Errors("name: ok\ncoalesce: {from: out, by: '#input.user_id'}" + steps).empty());
  auto errors = Errors("name: bad\ncoalesce: {from: w, by: '#input.user_id'}" + steps);
  EXPECT_TRUE(Has(errors, "field 'coalesce.from': window step 'w' follows 'w'")) << Join(errors);
  errors = Errors("name: bad\ncoalesce: {from: nope, by: '#input.user_id'}" + steps);
  EXPECT_TRUE(Has(errors, "field 'coalesce.from': no step 'nope'")) << Join(errors);
  errors = Errors("name: bad\ncoalesce: {from: out, by: '#input.usr', every: 1}" + steps);
  EXPECT_TRUE(Has(errors, "field 'coalesce.by': column ")) << Join(errors);
  EXPECT_TRUE(Has(errors, "field 'coalesce.every': unknown key (allowed: from, by)"))
      << Join(errors);
  errors = Errors(R"Y(
name: bad
coalesce: {from: out, by: '#input.user_id'}
steps:
  - {id: carts, type: split, cases: [{when: "#input.type == 'add_to_cart'", to: early}], default: out}
  - {id: early, type: sink, sink: {type: memory}, next: end}
  - {id: out, type: sink, sink: {type: memory}}
)Y");
  EXPECT_TRUE(Has(errors, "field 'coalesce.from': sink step 'early' is reached without passing 'out'"))
      << Join(errors);
  errors = Errors("name: bad\ncoalesce: [out]" + steps);
  EXPECT_TRUE(Has(errors, "field 'coalesce': expected {from: <step id>, by: <expression>}"))
      << Join(errors);
}

}  // namespace
}  // namespace streamrec::scenario::testing
