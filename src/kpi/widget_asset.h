// The storefront widget (web/widget.js), embedded at build time so that the binary
// serves it without a web directory (GET /widget.js).
#pragma once

#include <string_view>

namespace streamrec::kpi {

//! The widget's JavaScript source.
std::string_view WidgetJs();
//! A short hash of it, for ETag and cache busting.
std::string_view WidgetJsEtag();

}  // namespace streamrec::kpi
