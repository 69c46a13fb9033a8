// udc_edge_check - run a compressed model with libonnxruntime and the onnx_udc custom-op
// library, without Python, and compare its output with an expected raw float32 file.
//
//   udc_edge_check --model m.onnx --library libonnx_udc.so --input x.f32
//                  --input-shape 1,1,28,28 --expected y.f32 [--atol 1e-4]
//
// Single float32 input, single float32 output; names are read from the session.
// Prints the max abs error; exit 0 when it is <= atol, 1 otherwise (or on any error).
#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string model, library, input, expected, shape = "";
  double atol = 1e-4;
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "udc_edge_check: " << why << "\n"
            << "usage: udc_edge_check --model m.onnx --library libonnx_udc.so --input x.f32\n"
            << "                      --input-shape 1,1,28,28 --expected y.f32 [--atol 1e-4]\n";
  std::exit(1);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") Usage("help");
    if (i + 1 >= argc) Usage("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--model") a.model = v;
    else if (k == "--library") a.library = v;
    else if (k == "--input") a.input = v;
    else if (k == "--input-shape") a.shape = v;
    else if (k == "--expected") a.expected = v;
    else if (k == "--atol") {
      char* end = nullptr;
      a.atol = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(a.atol >= 0)) Usage("bad --atol " + v);
    } else {
      Usage("unknown option " + k);
    }
  }
  if (a.model.empty() || a.library.empty() || a.input.empty() || a.shape.empty() || a.expected.empty()) {
    Usage("--model, --library, --input, --input-shape and --expected are required");
  }
  return a;
}

std::vector<int64_t> ParseShape(const std::string& s) {
  std::vector<int64_t> dims;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long d = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || d < 0) Usage("bad --input-shape " + s);
    dims.push_back(d);
  }
  if (dims.empty()) Usage("bad --input-shape " + s);
  return dims;
}

std::vector<float> ReadF32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() % sizeof(float) != 0) {
    throw std::runtime_error(path + " has " + std::to_string(bytes.size()) + " bytes, not a multiple of 4");
  }
  std::vector<float> v(bytes.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

int Run(const Args& a) {
  const std::vector<int64_t> shape = ParseShape(a.shape);
  std::vector<float> input = ReadF32(a.input);
  const std::vector<float> expected = ReadF32(a.expected);
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  if (count != input.size()) {
    throw std::runtime_error("--input-shape " + a.shape + " has " + std::to_string(count) + " elements but " +
                             a.input + " holds " + std::to_string(input.size()));
  }

  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "udc_edge_check");
  Ort::SessionOptions so;
  so.RegisterCustomOpsLibrary(a.library.c_str());
  Ort::Session session(env, a.model.c_str(), so);
  if (session.GetInputCount() != 1 || session.GetOutputCount() != 1) {
    throw std::runtime_error("the model has " + std::to_string(session.GetInputCount()) + " inputs and " +
                             std::to_string(session.GetOutputCount()) + " outputs; exactly one of each is supported");
  }
  Ort::AllocatorWithDefaultOptions alloc;
  const std::string in_name = session.GetInputNameAllocated(0, alloc).get();
  const std::string out_name = session.GetOutputNameAllocated(0, alloc).get();
  if (session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    throw std::runtime_error("input '" + in_name + "' is not float32");
  }

  Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value x = Ort::Value::CreateTensor<float>(mem, input.data(), input.size(), shape.data(), shape.size());
  const char* in_names[] = {in_name.c_str()};
  const char* out_names[] = {out_name.c_str()};
  std::vector<Ort::Value> y = session.Run(Ort::RunOptions{nullptr}, in_names, &x, 1, out_names, 1);

  auto info = y.at(0).GetTensorTypeAndShapeInfo();
  if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    throw std::runtime_error("output '" + out_name + "' is not float32");
  }
  const size_t n = info.GetElementCount();
  if (n != expected.size()) {
    throw std::runtime_error("output '" + out_name + "' has " + std::to_string(n) + " elements, " + a.expected +
                             " holds " + std::to_string(expected.size()));
  }
  const float* out = y[0].GetTensorData<float>();
  double max_err = 0.0;
  bool nan = false;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(static_cast<double>(out[i]) - static_cast<double>(expected[i]));
    if (std::isnan(e)) nan = true;
    else if (e > max_err) max_err = e;
  }
  std::printf("model %s: input '%s' -> output '%s' (%zu values)\n", a.model.c_str(), in_name.c_str(),
              out_name.c_str(), n);
  std::printf("max abs error %.9g (atol %.3g)%s\n", max_err, a.atol, nan ? ", NaN mismatch" : "");
  const bool ok = !nan && max_err <= a.atol;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  try {
    return Run(args);
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "udc_edge_check: onnxruntime error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "udc_edge_check: error: %s\n", e.what());
  }
  return 1;
}
