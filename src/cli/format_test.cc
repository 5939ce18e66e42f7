// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/format.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace boxlite::cli {
namespace {

using json = nlohmann::json;

const json kBox = {{"Id", "abc123"},
                   {"Name", "web"},
                   {"Cpus", 2},
                   {"Memory", 512},
                   {"State",
                    {{"Status", "running"}, {"Running", true}, {"Pid", 77}, {"ExitCode", nullptr}}},
                   {"ports", json::array({{{"host", 8080}, {"guest", 80}}})}};

std::string Render(const std::string& t) {
  auto r = RenderTemplate(t, kBox);
  EXPECT_TRUE(r.ok()) << t << ": " << r.error().ToString();
  return r.ok() ? *r : "";
}

TEST(TemplateTest, FieldsLiteralsAndJson) {
  EXPECT_EQ(Render("{{.Id}}"), "abc123");
  EXPECT_EQ(Render("{{ .Name }}"), "web");
  EXPECT_EQ(Render("{{.State.Status}}"), "running");
  EXPECT_EQ(Render("{{.State.Running}} {{.State.Pid}}"), "true 77");
  EXPECT_EQ(Render("{{.State.ExitCode}}"), "<nil>");
  EXPECT_EQ(Render("name={{.Name}} cpus={{.Cpus}}, mem={{.Memory}}MiB"),
            "name=web cpus=2, mem=512MiB");
  EXPECT_EQ(Render("plain text"), "plain text");
  EXPECT_EQ(Render(""), "");
  EXPECT_EQ(Render("{{json .Name}}"), "\"web\"");
  EXPECT_EQ(json::parse(Render("{{json .State}}")), kBox["State"]);
  EXPECT_EQ(json::parse(Render("{{json .}}")), kBox);
  EXPECT_EQ(json::parse(Render("{{.ports}}")), kBox["ports"]);
  EXPECT_EQ(Render("{a} }} {{.Id}}"), "{a} }} abc123");
}

TEST(TemplateTest, UnsupportedActionsAndMissingFieldsAreErrors) {
  for (const char* bad : {"{{if .State.Running}}x{{end}}", "{{range .ports}}x{{end}}",
                          "{{.Name | printf \"%s\"}}", "{{printf \"%s\" .Name}}", "{{Name}}",
                          "{{.Name", "{{}}", "{{..Name}}", "{{.State.}}", "{{- .Name}}",
                          "{{json}}", "{{$x := .Name}}"}) {
    Status s = CheckTemplate(bad);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
    EXPECT_FALSE(RenderTemplate(bad, kBox).ok()) << bad;
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  }
  EXPECT_TRUE(CheckTemplate("{{.Nope}}").ok());  // Fields are only known per box.
  auto missing = RenderTemplate("{{.State.Nope}}", kBox);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find(".State.Nope"), std::string::npos);
  EXPECT_FALSE(RenderTemplate("{{.name}}", kBox).ok());  // Case-sensitive, as Go.
  EXPECT_FALSE(RenderTemplate("{{.Id.X}}", kBox).ok());  // Not an object.
}

TEST(YamlTest, RoundTripsWithEveryTypeKept) {
  json doc = {{"version", "0.9.0"},
              {"number_like", "123"},
              {"bool_like", "yes"},
              {"off", "off"},
              {"null_like", "null"},
              {"date_like", "2026-12-06T15:58:23Z"},
              {"empty", ""},
              {"colon", "a: b"},
              {"path", "/var/lib/boxlite"},
              {"count", 3},
              {"big", uint64_t{1} << 63},
              {"negative", -4},
              {"ratio", 0.25},
              {"short", 2.42},
              {"flag", false},
              {"nothing", nullptr},
              {"list", json::array({1, "two", json::array()})},
              {"map", json::object()},
              {"nested", {{"Status", "running"}}}};
  std::string text = ToYaml(doc);
  YAML::Node n = YAML::Load(text);
  EXPECT_EQ(n["version"].as<std::string>(), "0.9.0");
  EXPECT_EQ(n["number_like"].Tag(), "!");  // Quoted: read back as a string.
  EXPECT_EQ(n["bool_like"].Tag(), "!");
  EXPECT_EQ(n["off"].Tag(), "!");
  EXPECT_EQ(n["null_like"].Tag(), "!");
  EXPECT_EQ(n["date_like"].Tag(), "!");
  EXPECT_EQ(n["empty"].as<std::string>(), "");
  EXPECT_EQ(n["colon"].as<std::string>(), "a: b");
  EXPECT_EQ(n["path"].as<std::string>(), "/var/lib/boxlite");
  EXPECT_EQ(n["count"].as<int>(), 3);
  EXPECT_EQ(n["big"].as<uint64_t>(), uint64_t{1} << 63);
  EXPECT_EQ(n["negative"].as<int>(), -4);
  EXPECT_DOUBLE_EQ(n["ratio"].as<double>(), 0.25);
  EXPECT_EQ(n["short"].Scalar(), "2.42");
  EXPECT_EQ(n["short"].as<double>(), 2.42);
  EXPECT_FALSE(n["flag"].as<bool>());
  EXPECT_TRUE(n["nothing"].IsNull());
  EXPECT_EQ(n["list"][1].as<std::string>(), "two");
  EXPECT_EQ(n["list"][2].size(), 0u);
  EXPECT_TRUE(n["map"].IsMap());
  EXPECT_EQ(n["nested"]["Status"].as<std::string>(), "running");
  EXPECT_EQ(text.back(), '\n');
}

TEST(YamlTest, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  json doc = {{"name", std::string("a\xff" "b")}};
  std::string text = ToYaml(doc);
  EXPECT_EQ(YAML::Load(text)["name"].as<std::string>(), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(ToJson(doc), "{\"name\":\"a\xef\xbf\xbd" "b\"}");
}

}  // namespace
}  // namespace boxlite::cli
