// fast_model.cc - PrepareFast (fast_model.h). ONNX field numbers are those of onnx.proto
// (onnx 1.17+; the ones used here have not changed since IR version 3).
#include "fast/fast_model.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <system_error>
#include <thread>
#include <map>
#include <set>

#include "core/decode.h"
#include "core/format.h"
#include "fast/wire.h"

// Ordered containers, not unordered ones: hashtable bucket allocation references
// std::__throw_bad_array_new_length (GLIBCXX_3.4.29), above the wheel's manylinux_2_28.

namespace udc {
namespace fast {
namespace {

// onnx.proto field numbers.
namespace model_f { constexpr uint32_t kGraph = 7; }
namespace graph_f { constexpr uint32_t kNode = 1, kInitializer = 5; }
namespace node_f { constexpr uint32_t kInput = 1, kOutput = 2, kName = 3, kOpType = 4, kAttribute = 5, kDomain = 7; }
namespace attr_f { constexpr uint32_t kG = 6, kGraphs = 11; }
namespace tensor_f {
constexpr uint32_t kDims = 1, kDataType = 2, kInt32Data = 5, kName = 8, kRawData = 9, kExternalData = 13,
                   kDataLocation = 14;
}
namespace entry_f { constexpr uint32_t kKey = 1, kValue = 2; }

constexpr std::string_view kDomain = kDecodeDomain;
constexpr uint64_t kTensorUint8 = 2;
constexpr uint64_t kLocationExternal = 1;
constexpr int kMaxGraphDepth = 64;  // subgraph nesting scanned for remaining custom ops

// The decode op (core/format.h kDecodeOps) a node is, or null.
const DecodeOpType* FindOp(std::string_view domain, std::string_view op_type) {
  if (domain != kDomain) return nullptr;
  for (const DecodeOpType& op : kDecodeOps) {
    if (op.name == op_type) return &op;
  }
  return nullptr;
}

struct Node {
  std::string_view whole;
  std::string_view name, op_type, domain;
  std::vector<std::string_view> inputs, outputs;
  std::vector<std::string_view> attributes;
};

struct Tensor {
  std::string_view whole;
  std::string_view name;
  uint64_t data_type = 0;
  bool has_raw = false;
  std::string_view raw;
  // int32_data in wire order: a packed run (kLen) or one unpacked value each
  std::vector<std::pair<std::string_view, uint64_t>> int32_data;
  uint64_t location = 0;
  std::vector<std::pair<std::string_view, std::string_view>> external;
};

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

Status ParseNode(std::string_view bytes, Node* n) {
  n->whole = bytes;
  return ForEachField(bytes, "NodeProto", [&](const Field& f) {
    if (f.type != kLen) return Status::Ok();
    switch (f.number) {
      case node_f::kInput: n->inputs.push_back(f.value); break;
      case node_f::kOutput: n->outputs.push_back(f.value); break;
      case node_f::kName: n->name = f.value; break;
      case node_f::kOpType: n->op_type = f.value; break;
      case node_f::kDomain: n->domain = f.value; break;
      case node_f::kAttribute: n->attributes.push_back(f.value); break;
      default: break;
    }
    return Status::Ok();
  });
}

Status ParseEntry(std::string_view bytes, std::pair<std::string_view, std::string_view>* kv) {
  return ForEachField(bytes, "StringStringEntryProto", [&](const Field& f) {
    if (f.type == kLen && f.number == entry_f::kKey) kv->first = f.value;
    if (f.type == kLen && f.number == entry_f::kValue) kv->second = f.value;
    return Status::Ok();
  });
}

Status ParseTensor(std::string_view bytes, Tensor* t) {
  t->whole = bytes;
  return ForEachField(bytes, "TensorProto", [&](const Field& f) {
    switch (f.number) {
      case tensor_f::kName:
        if (f.type == kLen) t->name = f.value;
        break;
      case tensor_f::kDataType:
        if (f.type == kVarint) t->data_type = f.number_value;
        break;
      case tensor_f::kRawData:
        if (f.type == kLen) t->has_raw = true, t->raw = f.value;
        break;
      case tensor_f::kInt32Data:
        if (f.type == kLen) t->int32_data.emplace_back(f.value, 0);
        if (f.type == kVarint) t->int32_data.emplace_back(std::string_view(), f.number_value);
        break;
      case tensor_f::kDataLocation:
        if (f.type == kVarint) t->location = f.number_value;
        break;
      case tensor_f::kExternalData:
        if (f.type == kLen) {
          std::pair<std::string_view, std::string_view> kv;
          UDC_RETURN_IF_ERROR(ParseEntry(f.value, &kv));
          t->external.push_back(kv);
        }
        break;
      default: break;
    }
    return Status::Ok();
  });
}

// Any ai.onnx_udc node in `graph` or below (attributes g / graphs), to depth kMaxGraphDepth.
Status HasCustomNodes(std::string_view graph, int depth, bool* found);

Status AttributeHasCustomNodes(std::string_view attribute, int depth, bool* found) {
  return ForEachField(attribute, "AttributeProto", [&](const Field& f) {
    if (f.type == kLen && (f.number == attr_f::kG || f.number == attr_f::kGraphs)) {
      return HasCustomNodes(f.value, depth + 1, found);
    }
    return Status::Ok();
  }, found);
}

Status HasCustomNodes(std::string_view graph, int depth, bool* found) {
  if (depth > kMaxGraphDepth) {
    return Status(Code::kBadModel, "subgraphs nest deeper than " + std::to_string(kMaxGraphDepth));
  }
  return ForEachField(graph, "GraphProto", [&](const Field& f) {
    if (f.type != kLen || f.number != graph_f::kNode) return Status::Ok();
    Node n;
    UDC_RETURN_IF_ERROR(ParseNode(f.value, &n));
    if (n.domain == kDomain) {
      *found = true;
      return Status::Ok();
    }
    for (std::string_view a : n.attributes) UDC_RETURN_IF_ERROR(AttributeHasCustomNodes(a, depth, found));
    return Status::Ok();
  }, found);
}

// A relative location with no '..' component whose real path (symlinks resolved) lies
// under base_dir's (as the Python loader: onnx_udc/graph/modelio.py).
Status ExternalPath(const std::string& base_dir, std::string_view location, const std::string& what,
                    std::string* path) {
  if (base_dir.empty()) {
    return Status(Code::kBadModel, what + " is stored as external data, which needs the model's file "
                                          "(load it by path, not from bytes)");
  }
  if (location.empty() || location.front() == '/' || location.find('\0') != std::string_view::npos) {
    return Status(Code::kBadModel, what + ": external data location " + Quote(location) + " is not a relative path");
  }
  size_t start = 0;
  while (start <= location.size()) {
    const size_t end = std::min(location.find('/', start), location.size());
    if (location.substr(start, end - start) == "..") {
      return Status(Code::kBadModel, what + ": external data location " + Quote(location) +
                                         " leaves the model's folder");
    }
    start = end + 1;
  }
  const std::string joined = base_dir + "/" + std::string(location);
  char* base_real = ::realpath(base_dir.c_str(), nullptr);
  char* file_real = ::realpath(joined.c_str(), nullptr);
  std::unique_ptr<char, void (*)(void*)> base_owner(base_real, &std::free), file_owner(file_real, &std::free);
  if (base_real == nullptr) return Status(Code::kIoError, what + ": cannot resolve the model's folder " + base_dir);
  if (file_real == nullptr) return Status(Code::kIoError, what + ": cannot open external data file " + joined);
  const std::string base(base_real), file(file_real);
  if (file.size() <= base.size() || file.compare(0, base.size(), base) != 0 ||
      (base != "/" && file[base.size()] != '/')) {
    return Status(Code::kBadModel, what + ": external data location " + Quote(location) +
                                       " resolves outside the model's folder");
  }
  *path = file;
  return Status::Ok();
}

Status ParseUint(std::string_view text, const std::string& what, uint64_t* out) {
  if (text.empty() || text.size() > 19) return Status(Code::kBadModel, what + ": bad number " + Quote(text));
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status(Code::kBadModel, what + ": bad number " + Quote(text));
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return Status::Ok();
}

// Reads [offset, offset + length) of a regular file (never a FIFO, device or folder: they
// could block or have no size).
Status ReadExternal(const Tensor& t, const std::string& base_dir, std::string* out) {
  const std::string what = "blob " + Quote(t.name);
  std::string_view location;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (const auto& [key, value] : t.external) {
    if (key == "location") location = value;
    if (key == "offset") UDC_RETURN_IF_ERROR(ParseUint(value, what + " offset", &offset));
    if (key == "length") {
      UDC_RETURN_IF_ERROR(ParseUint(value, what + " length", &length));
      has_length = true;
    }
  }
  std::string path;
  UDC_RETURN_IF_ERROR(ExternalPath(base_dir, location, what, &path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status(Code::kIoError, what + ": cannot open external data file " + path);
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  // statx, not fstat: fstat is a glibc 2.33 symbol, statx 2.28 (the wheel's manylinux_2_28)
  struct statx st {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st) != 0 || !S_ISREG(st.stx_mode)) {
    return Status(Code::kBadModel, what + ": external data " + path + " is not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.stx_size);
  if (offset > file_size) {
    return Status(Code::kIoError, what + ": offset " + std::to_string(offset) + " is past the end of " + path +
                                      " (" + std::to_string(file_size) + " bytes)");
  }
  if (!has_length) length = file_size - offset;
  if (length > file_size - offset) {
    return Status(Code::kIoError, what + ": needs " + std::to_string(length) + " bytes at offset " +
                                      std::to_string(offset) + " of " + path + ", which has " +
                                      std::to_string(file_size) + " (truncated?)");
  }
  out->resize(static_cast<size_t>(length));
  for (uint64_t done = 0; done < length;) {
    const ssize_t n = ::pread(fd, &(*out)[done], static_cast<size_t>(length - done), static_cast<off_t>(offset + done));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return Status(Code::kIoError, what + ": cannot read " + std::to_string(length) + " bytes of " + path);
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// The blob's bytes: raw_data, int32_data (one byte per value) or external data. `storage`
// holds them when they are not in the model.
Status BlobBytes(const Tensor& t, const std::string& base_dir, std::string* storage, std::string_view* bytes) {
  if (t.data_type != kTensorUint8) {
    return Status(Code::kBadModel, "blob " + Quote(t.name) + " is not uint8 (data_type " +
                                       std::to_string(t.data_type) + ")");
  }
  if (t.location == kLocationExternal) {
    UDC_RETURN_IF_ERROR(ReadExternal(t, base_dir, storage));
    *bytes = *storage;
    return Status::Ok();
  }
  if (t.has_raw) {
    *bytes = t.raw;
    return Status::Ok();
  }
  auto push = [&](uint64_t v) -> Status {
    if (v > 255) return Status(Code::kBadModel, "blob " + Quote(t.name) + " holds a value above 255");
    storage->push_back(static_cast<char>(v));
    return Status::Ok();
  };
  for (const auto& [run, value] : t.int32_data) {
    if (run.data() != nullptr) {
      UDC_RETURN_IF_ERROR(Reader::ForEachPacked(run, "TensorProto", push));
    } else {
      UDC_RETURN_IF_ERROR(push(value));
    }
  }
  *bytes = *storage;
  return Status::Ok();
}

// The placeholder TensorProto of a decoded tensor (session.py _placeholder).
std::string Placeholder(const DenseTensor& t) {
  std::string out;
  Writer w(&out);
  for (int64_t d : t.shape) w.VarintField(tensor_f::kDims, static_cast<uint64_t>(d));
  w.VarintField(tensor_f::kDataType, t.dtype);
  w.LenField(tensor_f::kName, t.name);
  const std::pair<const char*, std::string> entries[] = {
      {"location", "onnx_udc.decoded"}, {"offset", "0"}, {"length", std::to_string(t.nbytes)}};
  for (const auto& [key, value] : entries) {
    std::string entry;
    Writer e(&entry);
    e.LenField(entry_f::kKey, key);
    e.LenField(entry_f::kValue, value);
    w.LenField(tensor_f::kExternalData, entry);
  }
  w.VarintField(tensor_f::kDataLocation, kLocationExternal);
  return out;
}

struct Job {
  const Node* node;
  const DecodeOpType* op;
  size_t init;  // index into the graph's initializers
  std::string storage;
  std::string_view blob;
  DenseTensor dense;
  Status status;
};

void DecodeJob(Job* job, const DecodeOptions& opt) {
  try {
    const std::string name(job->node->outputs[0]);
    BlobView view;
    Status s = Inspect(reinterpret_cast<const uint8_t*>(job->blob.data()), job->blob.size(), &view);
    if (s.ok() && static_cast<DType>(view.header.dtype) != job->op->dtype) {
      s = Status(Code::kBadModel, std::string("blob holds ") + DTypeName(view.header.dtype) + ", op " +
                                      std::string(job->op->name) + " outputs " +
                                      DTypeName(static_cast<uint8_t>(job->op->dtype)));
    }
    if (s.ok()) s = CheckOutputCap(view, opt);
    if (s.ok()) {
      DenseTensor& d = job->dense;
      d.name = name;
      d.dtype = view.header.dtype;
      for (unsigned i = 0; i < view.header.ndim; ++i) d.shape.push_back(static_cast<int64_t>(view.header.shape[i]));
      d.nbytes = view.nbytes();
      const size_t alloc = static_cast<size_t>(std::max<uint64_t>(d.nbytes, 1));
      d.data.reset(static_cast<uint8_t*>(::operator new(alloc, std::align_val_t(64))));
      s = DecodeInto(view, d.data.get(), static_cast<size_t>(d.nbytes), opt);
    }
    job->status = s.ok() ? s : Status(s.code(), name + ": " + s.message());
  } catch (const std::bad_alloc&) {
    job->status = Status(Code::kOutOfMemory, "out of memory while decoding a blob");
  } catch (const std::exception& e) {
    job->status = Status(Code::kInternal, e.what());
  }
}

// Decodes every job: min(jobs, cpus) workers, cpus / workers threads per blob.
void DecodeAll(std::vector<Job>& jobs, const DecodeOptions& opt) {
  int cpus = opt.max_threads;
  if (cpus <= 0) cpus = static_cast<int>(std::min(8u, std::max(1u, std::thread::hardware_concurrency())));
  const int workers = static_cast<int>(std::max<size_t>(1, std::min<size_t>(jobs.size(), static_cast<size_t>(cpus))));
  DecodeOptions each = opt;
  each.max_threads = std::max(1, cpus / workers);
  std::atomic<size_t> next{0};
  auto work = [&]() {
    for (size_t i = next++; i < jobs.size(); i = next++) DecodeJob(&jobs[i], each);
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {  // no more threads: the ones started and this one do it
      break;
    }
  }
  work();
  for (std::thread& t : pool) t.join();
}

}  // namespace

Status PrepareFast(const uint8_t* model, size_t model_len, const FastOptions& options, FastModel* out) {
  *out = FastModel();
  if (model == nullptr && model_len != 0) return Status(Code::kInvalidArgument, "model is NULL");
  const std::string_view bytes(reinterpret_cast<const char*>(model), model_len);

  // ModelProto: exactly one graph. Its fields (and the graph's) are kept for the rewrite.
  std::vector<Field> model_fields;
  std::string_view graph;
  int graphs = 0;
  const Status model_read = ForEachField(bytes, "ModelProto", [&](const Field& f) {
    if (f.number == model_f::kGraph) {
      if (f.type != kLen) return Status(Code::kBadModel, "ModelProto: graph is not a message");
      graph = f.value;
      ++graphs;
    }
    model_fields.push_back(f);
    return Status::Ok();
  });
  if (!model_read.ok()) return model_read;
  if (graphs != 1) {
    return Status(Code::kBadModel, graphs == 0 ? "not an ONNX model: ModelProto has no graph"
                                               : "ModelProto has " + std::to_string(graphs) + " graph fields");
  }

  // GraphProto: nodes and initializers, in order.
  std::vector<Field> graph_fields;
  std::vector<Node> nodes;
  std::vector<Tensor> inits;
  std::map<std::string_view, size_t> init_index;
  const Status graph_read = ForEachField(graph, "GraphProto", [&](const Field& f) {
    graph_fields.push_back(f);
    if (f.type != kLen) return Status::Ok();
    if (f.number == graph_f::kNode) {
      nodes.emplace_back();
      return ParseNode(f.value, &nodes.back());
    }
    if (f.number == graph_f::kInitializer) {
      inits.emplace_back();
      UDC_RETURN_IF_ERROR(ParseTensor(f.value, &inits.back()));
      if (!init_index.emplace(inits.back().name, inits.size() - 1).second) {
        // onnxruntime keeps one, the Python loader another: refuse rather than guess
        return Status(Code::kBadModel, "two initializers are named " + Quote(inits.back().name));
      }
    }
    return Status::Ok();
  });
  if (!graph_read.ok()) return graph_read;

  // The main graph's decode nodes and their blobs (graph/rewrite.py decode_nodes).
  std::vector<Job> jobs;
  std::set<size_t> blob_inits;
  std::set<std::string_view> outputs;
  for (const Node& n : nodes) {
    const DecodeOpType* op = FindOp(n.domain, n.op_type);
    if (op == nullptr) continue;
    const std::string label = n.name.empty() ? (n.outputs.empty() ? std::string("?") : std::string(n.outputs[0]))
                                             : std::string(n.name);
    const auto it = n.inputs.size() == 1 ? init_index.find(n.inputs[0]) : init_index.end();
    if (it == init_index.end()) {
      return Status(Code::kBadModel, "decode node " + Quote(label) + " has no blob initializer in its graph");
    }
    if (n.outputs.size() != 1 || n.outputs[0].empty()) {
      return Status(Code::kBadModel, "decode node " + Quote(label) + " must have exactly one output");
    }
    if (init_index.count(n.outputs[0]) || !outputs.insert(n.outputs[0]).second) {
      // the placeholder would be a second initializer, or a second producer, of that name
      return Status(Code::kBadModel, "decode node " + Quote(label) + " outputs " + Quote(n.outputs[0]) +
                                         ", which an initializer or another decode node already defines");
    }
    if (!blob_inits.insert(it->second).second) {
      return Status(Code::kBadModel, "blob " + Quote(n.inputs[0]) + " is read by more than one decode node");
    }
    Job job;
    job.node = &n;
    job.op = op;
    job.init = it->second;
    jobs.push_back(std::move(job));
  }
  for (Job& job : jobs) {
    UDC_RETURN_IF_ERROR(BlobBytes(inits[job.init], options.base_dir, &job.storage, &job.blob));
  }
  DecodeAll(jobs, options.decode);
  for (const Job& job : jobs) UDC_RETURN_IF_ERROR(job.status);

  // The rewritten graph: fields in order, decode nodes dropped, blobs -> placeholders.
  std::map<size_t, const Job*> by_init;
  std::set<const Node*> dropped;
  for (const Job& job : jobs) by_init.emplace(job.init, &job), dropped.insert(job.node);
  std::string new_graph;
  new_graph.reserve(graph.size());
  {
    Writer w(&new_graph);
    size_t node_i = 0, init_i = 0;
    for (const Field& f : graph_fields) {
      if (f.type == kLen && f.number == graph_f::kNode) {
        const Node& n = nodes[node_i++];
        if (dropped.count(&n)) continue;
        if (n.domain == kDomain) out->needs_custom_ops = true;
        for (std::string_view a : n.attributes) {
          UDC_RETURN_IF_ERROR(AttributeHasCustomNodes(a, 0, &out->needs_custom_ops));
        }
      } else if (f.type == kLen && f.number == graph_f::kInitializer) {
        const auto it = by_init.find(init_i++);
        if (it != by_init.end()) {
          w.LenField(graph_f::kInitializer, Placeholder(it->second->dense));
          continue;
        }
      }
      w.Raw(f.whole);
    }
  }

  // The rewritten model: every field as it was, the graph replaced.
  out->model.reserve(bytes.size());
  Writer w(&out->model);
  for (const Field& f : model_fields) {
    if (f.number == model_f::kGraph) {
      w.LenField(model_f::kGraph, new_graph);
    } else {
      w.Raw(f.whole);
    }
  }
  for (Job& job : jobs) out->tensors.push_back(std::move(job.dense));
  return Status::Ok();
}

}  // namespace fast
}  // namespace udc
