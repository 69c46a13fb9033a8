// udc_run - run an onnx-udc compressed model from C++ (no Python), on the fast or the
// portable load path, time it, and compare its outputs with the original model's.
//
// A deployment example to copy: any number of inputs of any tensor type and shape from
// .npy files, both load paths (onnx_udc.hpp), paired timing against the original model,
// output comparison, outputs saved as .npy. `udc_run --help` tells all.
#include <onnx_udc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage = R"(udc_run - run an onnx-udc compressed model with onnxruntime from C++

usage: udc_run MODEL.onnx [options]

inputs (every model input needs one; --list shows them):
  -i, --input NAME=FILE.npy   an input from a .npy file (repeat for each input)
  --inputs DIR                every input NAME from DIR/NAME.npy (characters outside
                              [A-Za-z0-9._-] in NAME are written '_')
  --manifest FILE             one "NAME FILE.npy" per line ('#' starts a comment; relative
                              paths are relative to the manifest's folder)
  --list                      print the model's inputs and outputs and exit

load paths:
  --load fast|portable|both   fast (default): every blob decoded once, onnxruntime runs the
                              original graph (no per-run cost); portable: the file as it is,
                              the custom ops registered (what any onnxruntime can do)
  --library PATH              libonnx_udc.so for the portable path (default: the one this
                              program is linked with)

comparison and timing:
  --original ORIG.onnx        run the uncompressed model too: outputs compared against it,
                              latency and session-creation time as ratios to it
  --atol X                    exit 1 when any output differs from the reference (the
                              original if given, else the first load path) by more than X
  --runs N                    timed runs per session (default 10; 0: run once, no timing)
  --warmup N                  untimed runs first (default 2)
  --create-runs N             sessions created per path for the creation time (default 1)
  --threads N                 onnxruntime intra-op threads (default 0: its own choice)
  --max-output-bytes N        refuse a blob that decodes to more than N bytes (both paths;
                              default 0: no cap). For models from untrusted sources.
  --save-outputs DIR          write each output of the first load path as DIR/NAME.npy
  -v, --verbose               onnxruntime's warnings and errors on stderr too

exit codes: 0 done (and within --atol), 1 an output beyond --atol, 2 usage error,
            3 model, input or onnxruntime error

example:
  udc_run bert.udc.onnx -i input_ids=ids.npy -i attention_mask=mask.npy \
          --original bert.onnx --load both --runs 50
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string model, original, library, save_dir, inputs_dir, manifest;
  std::vector<std::pair<std::string, std::string>> inputs;  // name, file
  std::vector<std::string> loads{"fast"};
  bool list = false, verbose = false;
  double atol = -1;
  int runs = 10, warmup = 2, create_runs = 1, threads = 0;
  uint64_t max_output_bytes = 0;
};

int ParseInt(const std::string& flag, const std::string& v, int lo) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < lo || x > 1000000) {
    throw UsageError(flag + " needs an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  }
  return static_cast<int>(x);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(k + " needs a value");
      return argv[++i];
    };
    if (k == "-h" || k == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (k == "-i" || k == "--input") {
      const std::string v = value();
      const size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) throw UsageError(k + " takes NAME=FILE.npy, got '" + v + "'");
      a.inputs.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (k == "--inputs") {
      a.inputs_dir = value();
    } else if (k == "--manifest") {
      a.manifest = value();
    } else if (k == "--list") {
      a.list = true;
    } else if (k == "-v" || k == "--verbose") {
      a.verbose = true;
    } else if (k == "--load") {
      const std::string v = value();
      if (v == "both") a.loads = {"fast", "portable"};
      else if (v == "fast" || v == "portable") a.loads = {v};
      else throw UsageError("--load is fast, portable or both, got '" + v + "'");
    } else if (k == "--library") {
      a.library = value();
    } else if (k == "--original") {
      a.original = value();
    } else if (k == "--atol") {
      const std::string v = value();
      char* end = nullptr;
      a.atol = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.atol >= 0)) throw UsageError("--atol needs a number >= 0, got '" + v + "'");
    } else if (k == "--runs") {
      a.runs = ParseInt(k, value(), 0);
    } else if (k == "--warmup") {
      a.warmup = ParseInt(k, value(), 0);
    } else if (k == "--create-runs") {
      a.create_runs = ParseInt(k, value(), 1);
    } else if (k == "--threads") {
      a.threads = ParseInt(k, value(), 0);
    } else if (k == "--max-output-bytes") {
      const std::string v = value();
      char* end = nullptr;
      a.max_output_bytes = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || v[0] == '-') throw UsageError("--max-output-bytes needs an integer >= 0, got '" + v + "'");
    } else if (k == "--save-outputs") {
      a.save_dir = value();
    } else if (!k.empty() && k[0] == '-') {
      throw UsageError("unknown option " + k);
    } else if (a.model.empty()) {
      a.model = k;
    } else {
      throw UsageError("one model only (got '" + a.model + "' and '" + k + "')");
    }
  }
  if (a.model.empty()) throw UsageError("no model given");
  if (a.atol >= 0 && a.original.empty() && a.loads.size() < 2 && !a.list) {
    throw UsageError("--atol compares against --original (or between --load both): give one of them");
  }
  return a;
}

// ---- .npy (numpy.lib.format versions 1-3, little-endian, C order) ------------------------
struct Npy {
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;
  std::vector<char> data;
};

struct TypeName {
  const char* descr;  // numpy kind + size, without the byte order
  ONNXTensorElementDataType type;
  size_t size;
  const char* name;
};
constexpr TypeName kTypes[] = {
    {"f4", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4, "float32"},  {"f8", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, 8, "float64"},
    {"f2", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2, "float16"}, {"i8", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8, "int64"},
    {"i4", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4, "int32"},    {"i2", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, 2, "int16"},
    {"i1", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, 1, "int8"},      {"u1", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1, "uint8"},
    {"u2", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, 2, "uint16"},  {"u4", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, 4, "uint32"},
    {"u8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, 8, "uint64"},  {"b1", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1, "bool"},
};

const TypeName* FindType(ONNXTensorElementDataType t) {
  for (const TypeName& n : kTypes) {
    if (n.type == t) return &n;
  }
  return nullptr;
}

std::string TypeString(ONNXTensorElementDataType t) {
  const TypeName* n = FindType(t);
  return n ? n->name : "type " + std::to_string(static_cast<int>(t));
}

std::string ShapeString(const std::vector<int64_t>& shape, const std::vector<std::string>& symbols = {}) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    if (shape[i] >= 0) s += std::to_string(shape[i]);
    else s += (i < symbols.size() && !symbols[i].empty()) ? symbols[i] : "?";
  }
  return s + "]";
}

Npy ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::string bad = path + " is not a .npy file";
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(bad);
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw std::runtime_error(bad);
    header_len = b[0] | (b[1] << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw std::runtime_error(bad);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  } else {
    throw std::runtime_error(path + ": .npy version " + std::to_string(magic[6]) + " is not supported");
  }
  if (header_len > (1u << 20)) throw std::runtime_error(bad);
  std::string header(header_len, '\0');
  if (!in.read(&header[0], header_len)) throw std::runtime_error(bad);
  auto field = [&](const std::string& key) -> std::string {
    const size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) throw std::runtime_error(bad + " (no " + key + ")");
    const size_t colon = header.find(':', k);
    size_t start = header.find_first_not_of(' ', colon + 1);
    if (colon == std::string::npos || start == std::string::npos) throw std::runtime_error(bad);
    const char open = header[start];
    const char close = open == '(' ? ')' : open == '\'' ? '\'' : ',';
    const size_t end = header.find(close, start + 1);
    if (end == std::string::npos) throw std::runtime_error(bad);
    return header.substr(start, end - start + (open == '(' || open == '\'' ? 1 : 0));
  };
  Npy npy;
  const std::string descr = field("descr");  // e.g. '<f4'
  if (descr.size() < 4 || descr.front() != '\'') throw std::runtime_error(path + ": dtype " + descr + " is not supported");
  const char order = descr[1];
  const std::string kind = descr.substr(2, descr.size() - 3);
  if (order == '>') throw std::runtime_error(path + ": big-endian data is not supported (save with numpy's default byte order)");
  const TypeName* type = nullptr;
  for (const TypeName& t : kTypes) {
    if (kind == t.descr) type = &t;
  }
  if (type == nullptr || (order != '<' && order != '|' && order != '=')) {
    throw std::runtime_error(path + ": dtype " + descr + " is not supported (numeric and bool only)");
  }
  if (field("fortran_order").rfind("True", 0) == 0) {
    throw std::runtime_error(path + ": Fortran order is not supported (save np.ascontiguousarray(x))");
  }
  const std::string shape = field("shape");
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') throw std::runtime_error(bad + " (shape)");
  uint64_t numel = 1;
  bool overflow = false;
  std::istringstream dims(shape.substr(1, shape.size() - 2));
  for (std::string dim; std::getline(dims, dim, ',');) {
    const size_t a = dim.find_first_not_of(' '), b = dim.find_last_not_of(' ');
    if (a == std::string::npos) {
      if (dims.eof()) break;  // the trailing comma of (3,)
      throw std::runtime_error(bad + " (shape " + shape + ")");
    }
    dim = dim.substr(a, b - a + 1);
    if (dim.size() > 18 || dim.find_first_not_of("0123456789") != std::string::npos) {
      throw std::runtime_error(bad + " (shape " + shape + ")");
    }
    const uint64_t d = std::stoull(dim);
    npy.shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && numel > UINT64_MAX / d) overflow = true;
    numel *= d;
  }
  npy.type = type->type;
  // The data must be in the file: check its length before allocating anything for it.
  const std::streampos here = in.tellg();
  in.seekg(0, std::ios::end);
  const uint64_t left = static_cast<uint64_t>(in.tellg() - here);
  in.seekg(here);
  if (overflow || numel > left / type->size) {
    throw std::runtime_error(path + " holds " + std::to_string(left) + " data bytes, fewer than its shape " +
                             ShapeString(npy.shape) + " needs");
  }
  npy.data.resize(static_cast<size_t>(numel * type->size));
  if (!npy.data.empty() && !in.read(npy.data.data(), static_cast<std::streamsize>(npy.data.size()))) {
    throw std::runtime_error("cannot read " + path);
  }
  return npy;
}

void WriteNpy(const std::string& path, ONNXTensorElementDataType type, const std::vector<int64_t>& shape,
              const void* data, size_t nbytes) {
  const TypeName* t = FindType(type);
  if (t == nullptr) throw std::runtime_error("cannot save " + path + ": " + TypeString(type) + " has no .npy type");
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string header = std::string("{'descr': '") + (t->size == 1 ? "|" : "<") + t->descr +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(header.size() & 0xff),
                                      static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(preamble), 10);
  out << header;
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string FileName(const std::string& name) {
  std::string s = name;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  return s;
}

// ---- sessions --------------------------------------------------------------------------
struct Port {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;
  std::vector<std::string> symbols;
  bool tensor = true;
};

std::vector<Port> Ports(Ort::UnownedSession session, bool inputs) {
  Ort::AllocatorWithDefaultOptions alloc;
  std::vector<Port> ports;
  const size_t n = inputs ? session.GetInputCount() : session.GetOutputCount();
  for (size_t i = 0; i < n; ++i) {
    Port p;
    p.name = (inputs ? session.GetInputNameAllocated(i, alloc) : session.GetOutputNameAllocated(i, alloc)).get();
    Ort::TypeInfo info = inputs ? session.GetInputTypeInfo(i) : session.GetOutputTypeInfo(i);
    p.tensor = info.GetONNXType() == ONNX_TYPE_TENSOR;
    if (p.tensor) {
      auto t = info.GetTensorTypeAndShapeInfo();
      p.type = t.GetElementType();
      p.shape = t.GetShape();
      std::vector<const char*> syms(p.shape.size(), nullptr);
      t.GetSymbolicDimensions(syms.data(), syms.size());
      for (const char* s : syms) p.symbols.emplace_back(s ? s : "");
    }
    ports.push_back(std::move(p));
  }
  return ports;
}

struct Runner {
  std::string label;
  std::unique_ptr<onnx_udc::Session> fast;  // fast path
  std::unique_ptr<Ort::Session> plain;     // portable path or the original model
  std::vector<double> create_s;
  std::vector<double> run_s;
  std::vector<Ort::Value> outputs;

  Ort::UnownedSession Get() const {
    return fast ? fast->GetSession() : Ort::UnownedSession{static_cast<OrtSession*>(*plain)};
  }
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Max |a - b| over two tensors of one type (as double); -1 when they cannot be compared.
double MaxAbsDiff(const Ort::Value& a, const Ort::Value& b, bool* identical) {
  *identical = false;
  if (!a.IsTensor() || !b.IsTensor()) return -1;
  auto ia = a.GetTensorTypeAndShapeInfo(), ib = b.GetTensorTypeAndShapeInfo();
  if (ia.GetElementType() != ib.GetElementType() || ia.GetShape() != ib.GetShape()) return -1;
  const size_t n = ia.GetElementCount();
  const TypeName* t = FindType(ia.GetElementType());
  if (t == nullptr) return -1;
  const char* pa = static_cast<const char*>(a.GetTensorRawData());
  const char* pb = static_cast<const char*>(b.GetTensorRawData());
  *identical = n == 0 || std::memcmp(pa, pb, n * t->size) == 0;
  double worst = 0;
  auto at = [&](const char* p, size_t i) -> double {
    switch (t->type) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return reinterpret_cast<const float*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return reinterpret_cast<const double*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return Ort::Float16_t::FromBits(reinterpret_cast<const uint16_t*>(p)[i]).ToFloat();
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return static_cast<double>(reinterpret_cast<const int64_t*>(p)[i]);
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return reinterpret_cast<const int32_t*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return reinterpret_cast<const int16_t*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return reinterpret_cast<const int8_t*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
        return reinterpret_cast<const uint8_t*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return reinterpret_cast<const uint16_t*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return reinterpret_cast<const uint32_t*>(p)[i];
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return static_cast<double>(reinterpret_cast<const uint64_t*>(p)[i]);
      default: return 0;
    }
  };
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(at(pa, i) - at(pb, i));
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

std::vector<std::pair<std::string, std::string>> InputFiles(const Args& a, const std::vector<Port>& ports) {
  std::map<std::string, std::string> files;
  if (!a.manifest.empty()) {
    std::ifstream in(a.manifest);
    if (!in) throw std::runtime_error("cannot open manifest " + a.manifest);
    const size_t slash = a.manifest.find_last_of('/');
    const std::string base = slash == std::string::npos ? "" : a.manifest.substr(0, slash + 1);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      line = line.substr(0, line.find('#'));
      std::istringstream words(line);
      std::string name, file, extra;
      if (!(words >> name)) continue;
      if (!(words >> file) || (words >> extra)) {
        throw UsageError(a.manifest + ":" + std::to_string(number) + ": expected 'NAME FILE.npy'");
      }
      files[name] = file[0] == '/' ? file : base + file;
    }
  }
  if (!a.inputs_dir.empty()) {
    std::map<std::string, std::string> seen;  // file name -> input name
    for (const Port& p : ports) {
      const auto [it, fresh] = seen.emplace(FileName(p.name), p.name);
      if (!fresh) {
        throw UsageError("inputs '" + it->second + "' and '" + p.name + "' both read " + it->first +
                         ".npy from --inputs: give them with -i NAME=FILE");
      }
    }
    for (const Port& p : ports) {
      const std::string f = a.inputs_dir + "/" + FileName(p.name) + ".npy";
      if (std::ifstream(f)) files[p.name] = f;
    }
  }
  for (const auto& [name, file] : a.inputs) files[name] = file;
  std::vector<std::pair<std::string, std::string>> out;
  std::string missing;
  for (const Port& p : ports) {
    const auto it = files.find(p.name);
    if (it == files.end()) {
      missing += "\n  " + p.name + " " + TypeString(p.type) + " " + ShapeString(p.shape, p.symbols);
    } else {
      out.emplace_back(p.name, it->second);
      files.erase(it);
    }
  }
  if (!files.empty()) throw UsageError("the model has no input '" + files.begin()->first + "' (--list shows its inputs)");
  if (!missing.empty()) throw UsageError("no data for these inputs (give -i NAME=FILE.npy):" + missing);
  return out;
}

void PrintPorts(const char* what, const std::vector<Port>& ports) {
  std::cout << what << ":\n";
  for (const Port& p : ports) {
    std::cout << "  " << p.name << "  " << (p.tensor ? TypeString(p.type) + " " + ShapeString(p.shape, p.symbols)
                                                     : std::string("(not a tensor)"))
              << "\n";
  }
}

int Main(const Args& a) {
  // onnxruntime's own log stays quiet: its errors reach us as exceptions (one line each).
  Ort::Env env(a.verbose ? ORT_LOGGING_LEVEL_WARNING : ORT_LOGGING_LEVEL_FATAL, "udc_run");
  Ort::SessionOptions options;
  if (a.threads > 0) options.SetIntraOpNumThreads(a.threads);

  std::vector<Runner> runners;
  auto make = [&](const std::string& label) {
    Runner r;
    r.label = label;
    for (int k = 0; k < a.create_runs; ++k) {
      r.fast.reset();
      r.plain.reset();
      const auto t0 = std::chrono::steady_clock::now();
      if (label == "fast") {
        onnx_udc::DecodeOptions decode;
        decode.max_output_bytes = a.max_output_bytes;
        r.fast = std::make_unique<onnx_udc::Session>(env, a.model, options, decode);
      } else if (label == "portable") {
        Ort::SessionOptions portable = options.Clone();
        // The ops read their options from config entries added before the registration.
        portable.AddConfigEntry("onnx_udc.max_output_bytes", std::to_string(a.max_output_bytes).c_str());
        onnx_udc::RegisterCustomOps(portable, a.library.empty() ? onnx_udc::LibraryPath() : a.library);
        r.plain = std::make_unique<Ort::Session>(env, a.model.c_str(), portable);
      } else {
        r.plain = std::make_unique<Ort::Session>(env, a.original.c_str(), options);
      }
      r.create_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    runners.push_back(std::move(r));
  };
  // Creation interleaved: original, then each path.
  if (!a.original.empty()) make("original");
  for (const std::string& load : a.loads) make(load);

  const std::vector<Port> inputs = Ports(runners.back().Get(), true);
  const std::vector<Port> outputs = Ports(runners.back().Get(), false);
  if (a.list) {
    PrintPorts("inputs", inputs);
    PrintPorts("outputs", outputs);
    return 0;
  }

  // Inputs: one .npy per input, checked against the model's types.
  std::vector<Npy> data;
  std::vector<Ort::Value> values;
  std::vector<const char*> in_names, out_names;
  const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault);
  for (const auto& [name, file] : InputFiles(a, inputs)) {
    data.push_back(ReadNpy(file));
    const Port& port = *std::find_if(inputs.begin(), inputs.end(), [&](const Port& p) { return p.name == name; });
    if (port.tensor && data.back().type != port.type) {
      throw std::runtime_error("input " + name + ": the model expects " + TypeString(port.type) + ", " + file +
                               " holds " + TypeString(data.back().type));
    }
  }
  size_t k = 0;
  for (const Port& p : inputs) {
    Npy& d = data[k++];
    values.push_back(Ort::Value::CreateTensor(memory, d.data.data(), d.data.size(), d.shape.data(), d.shape.size(), d.type));
    in_names.push_back(p.name.c_str());
  }
  for (const Port& p : outputs) out_names.push_back(p.name.c_str());

  Ort::RunOptions run_options{nullptr};
  auto run = [&](Runner& r) {
    return r.Get().Run(run_options, in_names.data(), values.data(), values.size(), out_names.data(), out_names.size());
  };
  for (Runner& r : runners) r.outputs = run(r);
  for (int w = 0; w < a.warmup; ++w) {
    for (Runner& r : runners) run(r);
  }
  // Paired timing: every round runs each session once, in a rotating order.
  for (int round = 0; round < a.runs; ++round) {
    for (size_t j = 0; j < runners.size(); ++j) {
      Runner& r = runners[(j + static_cast<size_t>(round)) % runners.size()];
      const auto t0 = std::chrono::steady_clock::now();
      run(r);
      r.run_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }

  std::printf("model %s: %zu inputs, %zu outputs\n", a.model.c_str(), inputs.size(), outputs.size());
  const Runner& base = runners.front();
  std::printf("%-9s %12s %9s %12s %9s %10s\n", "session", "create_ms", "ratio", "run_ms", "ratio", "decode_ms");
  for (const Runner& r : runners) {
    std::vector<double> ratios;
    for (size_t i = 0; i < r.run_s.size() && i < base.run_s.size(); ++i) ratios.push_back(r.run_s[i] / base.run_s[i]);
    char decode[32] = "-";
    if (r.fast) std::snprintf(decode, sizeof decode, "%.3f", 1e3 * r.fast->DecodeSeconds());
    std::printf("%-9s %12.3f %9.3f %12.4f %9.3f %10s\n", r.label.c_str(), 1e3 * Median(r.create_s),
                Median(r.create_s) / Median(base.create_s), 1e3 * Median(r.run_s), a.runs ? Median(ratios) : 0.0,
                decode);
  }
  if (a.runs) std::printf("(medians of %d paired runs; ratios against %s)\n", a.runs, base.label.c_str());

  // Outputs against the reference (the first session: the original when given), and the
  // two load paths against each other (the same weights: expect identical bytes).
  int status = 0;
  for (size_t j = 1; j < runners.size(); ++j) {
    for (size_t o = 0; o < outputs.size(); ++o) {
      bool identical = false;
      const double d = MaxAbsDiff(base.outputs[o], runners[j].outputs[o], &identical);
      const bool bad = a.atol >= 0 && (d < 0 || d > a.atol);
      std::printf("output %s: %s vs %s max |diff| %s%s%s\n", outputs[o].name.c_str(), runners[j].label.c_str(),
                  base.label.c_str(), d < 0 ? "n/a" : std::to_string(d).c_str(), identical ? " (identical bytes)" : "",
                  bad ? "  > atol" : "");
      if (bad) status = 1;
    }
  }
  if (runners.size() == 3) {  // original, fast, portable
    for (size_t o = 0; o < outputs.size(); ++o) {
      bool identical = false;
      const double d = MaxAbsDiff(runners[1].outputs[o], runners[2].outputs[o], &identical);
      std::printf("output %s: portable vs fast max |diff| %s%s\n", outputs[o].name.c_str(),
                  d < 0 ? "n/a" : std::to_string(d).c_str(), identical ? " (identical bytes)" : "");
    }
  }
  if (!a.save_dir.empty()) {
    const Runner& first = runners[a.original.empty() ? 0 : 1];
    std::map<std::string, std::string> files;  // file name -> output name
    for (const Port& p : outputs) {
      const auto [it, fresh] = files.emplace(FileName(p.name), p.name);
      if (!fresh) throw std::runtime_error("outputs '" + it->second + "' and '" + p.name + "' both save as " + it->first + ".npy");
    }
    for (size_t o = 0; o < outputs.size(); ++o) {
      const Ort::Value& v = first.outputs[o];
      if (!v.IsTensor()) continue;
      auto info = v.GetTensorTypeAndShapeInfo();
      const TypeName* t = FindType(info.GetElementType());
      const size_t nbytes = t ? info.GetElementCount() * t->size : 0;
      WriteNpy(a.save_dir + "/" + FileName(outputs[o].name) + ".npy", info.GetElementType(), info.GetShape(),
               v.GetTensorRawData(), nbytes);
    }
    std::printf("outputs of %s saved in %s\n", first.label.c_str(), a.save_dir.c_str());
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(Parse(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "udc_run: " << e.what() << "\n(udc_run --help for usage)\n";
    return 2;
  } catch (const std::exception& e) {
    std::string message = e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::cerr << "udc_run: error: " << message << "\n";
    return 3;
  }
}
