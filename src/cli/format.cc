// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/format.h"

#include <cctype>
#include <ctime>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "src/base/strings.h"

namespace boxlite::cli {
namespace {

using json = nlohmann::json;

// A string YAML 1.1 (what most readers, PyYAML's safe_load included, implement) reads
// back as a string when written plain: a letter first, then letters, digits and a few
// punctuation marks, and not one of the words that resolve to booleans or null.
bool PlainIsSafe(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != '/') {
      return false;
    }
  }
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}) {
    if (lower == word) return false;
  }
  return true;
}

void Emit(YAML::Emitter& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      out << YAML::BeginMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out << YAML::Key;
        if (PlainIsSafe(it.key())) {
          out << it.key();
        } else {
          out << YAML::DoubleQuoted << it.key();
        }
        out << YAML::Value;
        Emit(out, it.value());
      }
      out << YAML::EndMap;
      break;
    case json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : v) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (PlainIsSafe(s)) {
        out << s;
      } else {
        out << YAML::DoubleQuoted << s;
      }
      break;
    }
    case json::value_t::boolean:
      out << v.get<bool>();
      break;
    case json::value_t::number_integer:
      out << v.get<int64_t>();
      break;
    case json::value_t::number_unsigned:
      out << v.get<uint64_t>();
      break;
    case json::value_t::number_float:
      // The shortest text that reads back as the same double (yaml-cpp would print 17
      // digits: 2.42 as 2.4199999999999999).
      out << ToJson(v);
      break;
    default:
      out << YAML::Null;
      break;
  }
}

// One parsed {{...}} action.
struct Action {
  bool json = false;          // {{json PATH}}
  std::vector<std::string> path;  // Empty: "." itself.
};

Status TemplateError(std::string_view action, std::string_view why) {
  return Status::InvalidArgument(
      "template action {{" + std::string(action) + "}} " + std::string(why) +
      "; supported: literal text, {{.Field}}, {{.A.B}}, {{json .Field}}");
}

Result<Action> ParseAction(std::string_view raw) {
  std::string_view a = base::Trim(raw);
  Action out;
  if (a.starts_with("json") &&
      (a.size() == 4 || std::isspace(static_cast<unsigned char>(a[4])))) {
    out.json = true;
    a = base::Trim(a.substr(4));
  }
  if (a.empty() || a[0] != '.') {
    return TemplateError(raw, "is not supported");
  }
  if (a == ".") return out;
  std::string_view rest = a.substr(1);
  for (const std::string& part : base::Split(rest, '.')) {
    if (part.empty()) return TemplateError(raw, "has an empty field name");
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
        return TemplateError(raw, "is not supported");
      }
    }
    out.path.push_back(part);
  }
  return out;
}

// Splits the template into literal text and actions; calls `on_text`/`on_action`.
template <typename OnText, typename OnAction>
Status Walk(std::string_view text, OnText on_text, OnAction on_action) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      on_text(text.substr(pos));
      break;
    }
    on_text(text.substr(pos, open - pos));
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("template has an unclosed action at offset " +
                                     std::to_string(open) + " (a '{{' without '}}')");
    }
    auto action = ParseAction(text.substr(open + 2, close - open - 2));
    if (!action.ok()) return action.error();
    Status s = on_action(*action);
    if (!s.ok()) return s;
    pos = close + 2;
  }
  return Status::OK();
}

std::string Plain(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return v.get<std::string>();
    case json::value_t::null:
      return "<nil>";
    default:
      return ToJson(v);
  }
}

}  // namespace

std::string ToJson(const json& value, int indent) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string ToYaml(const json& value) {
  // Re-parse the replaced dump: every string is then valid UTF-8.
  json clean = json::parse(ToJson(value));
  YAML::Emitter out;
  Emit(out, clean);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

Status CheckTemplate(std::string_view text) {
  return Walk(text, [](std::string_view) {}, [](const Action&) { return Status::OK(); });
}

Result<std::string> RenderTemplate(std::string_view text, const json& data) {
  std::string out;
  Status s = Walk(
      text, [&](std::string_view literal) { out += literal; },
      [&](const Action& action) {
        const json* v = &data;
        std::string where;
        for (const auto& field : action.path) {
          where += "." + field;
          if (!v->is_object() || !v->contains(field)) {
            return Status::InvalidArgument("template: there is no field " + where +
                                           " (field names are case-sensitive, e.g. .State.Status)");
          }
          v = &(*v)[field];
        }
        out += action.json ? ToJson(*v) : Plain(*v);
        return Status::OK();
      });
  if (!s.ok()) return s;
  return out;
}

std::string Rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace boxlite::cli
