// C ABI over the MindSpore Lite 2.0 C++ API, loaded from Python with ctypes.
//
// Every function returns 0 (or a valid pointer) on success; on failure it returns a negative number
// (or NULL) and mnv1_last_error() says why. No C++ exception crosses this boundary.
// Build with -DMNV1_WITH_CONVERTER to include mnv1_convert (the converter ships only in the wheel).

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/format.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"

#ifdef MNV1_WITH_CONVERTER
#include "include/registry/converter_context.h"

namespace mindspore {
struct ConverterPara;

// The wheel exports this class but ships no header for it. Its only data member is a
// shared_ptr<ConverterPara>; every method takes std::vector<char> (the dual-ABI convention).
class MS_API Converter {
 public:
  Converter(converter::FmkType fmk_type, const std::vector<char> &model_file, const std::vector<char> &output_file,
            const std::vector<char> &weight_file);
  void SetConfigFile(const std::vector<char> &config_file);
  void SetInputFormat(Format format);
  void SetSaveType(ModelType save_type);
  Status Convert();

 private:
  std::shared_ptr<ConverterPara> data_;
};
}  // namespace mindspore
#endif

namespace {

thread_local std::string last_error;

int fail(const std::string &message) {
  last_error = message;
  return -1;
}

std::vector<char> chars(const char *text) { return std::vector<char>(text, text + std::strlen(text)); }

std::string describe(const mindspore::Status &status) {
  return "status " + std::to_string(static_cast<int32_t>(status.StatusCode())) + ": " + status.ToString();
}

struct Session {
  mindspore::Model model;
  std::vector<mindspore::MSTensor> inputs;
  std::vector<mindspore::MSTensor> outputs;
};

const std::vector<mindspore::MSTensor> *tensors_of(Session *session, int is_output) {
  return is_output ? &session->outputs : &session->inputs;
}

}  // namespace

extern "C" {

const char *mnv1_last_error(void) { return last_error.c_str(); }

const char *mnv1_version(void) {
  static const std::string version = mindspore::Version();
  return version.c_str();
}

#ifdef MNV1_WITH_CONVERTER
// Writes `<output_prefix>.ms` (the converter appends the suffix). config_file may be NULL or "";
// input_format is a mindspore::Format (0 NCHW, 1 NHWC) or -1 to keep the converter's default.
int mnv1_convert(int fmk, const char *model_file, const char *output_prefix, const char *config_file,
                 int input_format) {
  try {
    mindspore::Converter converter(static_cast<mindspore::converter::FmkType>(fmk), chars(model_file),
                                   chars(output_prefix), chars(""));
    converter.SetSaveType(mindspore::kMindIR_Lite);
    if (config_file != nullptr && config_file[0] != '\0') {
      converter.SetConfigFile(chars(config_file));
    }
    if (input_format >= 0) {
      converter.SetInputFormat(static_cast<mindspore::Format>(input_format));
    }
    mindspore::Status status = converter.Convert();
    if (status != mindspore::kSuccess) {
      return fail("conversion failed, " + describe(status));
    }
    return 0;
  } catch (const std::exception &exc) {
    return fail(std::string("conversion threw: ") + exc.what());
  }
}
#endif

// model_type is a mindspore::ModelType (4 for .ms, 0 for MINDIR). Returns NULL on failure.
void *mnv1_model_open(const char *path, int model_type, int num_threads) {
  try {
    auto context = std::make_shared<mindspore::Context>();
    context->SetThreadNum(num_threads);
    context->SetThreadAffinity(0);  // no core binding: the CPU may be shared
    context->MutableDeviceInfo().push_back(std::make_shared<mindspore::CPUDeviceInfo>());
    std::unique_ptr<Session> session(new Session());
    mindspore::Status status = session->model.Build(std::string(path), static_cast<mindspore::ModelType>(model_type),
                                                    context);
    if (status != mindspore::kSuccess) {
      fail("cannot build model " + std::string(path) + ", " + describe(status));
      return nullptr;
    }
    session->inputs = session->model.GetInputs();
    session->outputs = session->model.GetOutputs();
    if (session->inputs.empty() || session->outputs.empty()) {
      fail("model " + std::string(path) + " has no inputs or no outputs");
      return nullptr;
    }
    return session.release();
  } catch (const std::exception &exc) {
    fail(std::string("building the model threw: ") + exc.what());
    return nullptr;
  }
}

void mnv1_model_close(void *handle) { delete static_cast<Session *>(handle); }

int mnv1_model_count(void *handle, int is_output) {
  return static_cast<int>(tensors_of(static_cast<Session *>(handle), is_output)->size());
}

// Fills shape (up to max_dims), dtype (mindspore::DataType), format (mindspore::Format) and name.
// Returns the number of dimensions.
int mnv1_model_tensor_info(void *handle, int is_output, int index, int64_t *shape, int max_dims, int *dtype,
                           int *format, char *name, int name_capacity) {
  const auto *tensors = tensors_of(static_cast<Session *>(handle), is_output);
  if (index < 0 || index >= static_cast<int>(tensors->size())) {
    return fail("tensor index " + std::to_string(index) + " out of range");
  }
  const mindspore::MSTensor &tensor = (*tensors)[index];
  const std::vector<int64_t> &dims = tensor.Shape();
  if (static_cast<int>(dims.size()) > max_dims) {
    return fail("tensor has more than " + std::to_string(max_dims) + " dimensions");
  }
  std::copy(dims.begin(), dims.end(), shape);
  *dtype = static_cast<int>(tensor.DataType());
  *format = static_cast<int>(tensor.format());
  std::string tensor_name = tensor.Name();
  std::snprintf(name, static_cast<size_t>(name_capacity), "%s", tensor_name.c_str());
  return static_cast<int>(dims.size());
}

// Fills the first quantization parameters of a tensor (an int8 tensor of a per-tensor quantized model).
// Returns how many the tensor has (0 for a float tensor).
int mnv1_model_tensor_quant(void *handle, int is_output, int index, double *scale, int *zero_point) {
  const auto *tensors = tensors_of(static_cast<Session *>(handle), is_output);
  if (index < 0 || index >= static_cast<int>(tensors->size())) {
    return fail("tensor index " + std::to_string(index) + " out of range");
  }
  std::vector<mindspore::QuantParam> params = (*tensors)[index].QuantParams();
  if (!params.empty()) {
    *scale = params[0].scale;
    *zero_point = params[0].zero_point;
  }
  return static_cast<int>(params.size());
}

// Copies n_inputs buffers into the model inputs (sizes must match exactly) and runs the model.
int mnv1_model_predict(void *handle, const void *const *buffers, const uint64_t *sizes, int n_inputs) {
  auto *session = static_cast<Session *>(handle);
  try {
    if (n_inputs != static_cast<int>(session->inputs.size())) {
      return fail("model takes " + std::to_string(session->inputs.size()) + " inputs, got " +
                  std::to_string(n_inputs));
    }
    for (int i = 0; i < n_inputs; ++i) {
      mindspore::MSTensor &input = session->inputs[i];
      if (sizes[i] != input.DataSize()) {
        return fail("input " + input.Name() + " takes " + std::to_string(input.DataSize()) + " bytes, got " +
                    std::to_string(sizes[i]));
      }
      void *dst = input.MutableData();
      if (dst == nullptr) {
        return fail("cannot allocate input " + input.Name());
      }
      std::memcpy(dst, buffers[i], sizes[i]);
    }
    std::vector<mindspore::MSTensor> outputs;
    mindspore::Status status = session->model.Predict(session->inputs, &outputs);
    if (status != mindspore::kSuccess) {
      return fail("predict failed, " + describe(status));
    }
    session->outputs = outputs;
    return 0;
  } catch (const std::exception &exc) {
    return fail(std::string("predict threw: ") + exc.what());
  }
}

// Copies output `index` of the last run into dst, which holds exactly `size` bytes.
int mnv1_model_read_output(void *handle, int index, void *dst, uint64_t size) {
  auto *session = static_cast<Session *>(handle);
  if (index < 0 || index >= static_cast<int>(session->outputs.size())) {
    return fail("output index " + std::to_string(index) + " out of range");
  }
  mindspore::MSTensor &output = session->outputs[index];
  if (size != output.DataSize()) {
    return fail("output " + output.Name() + " holds " + std::to_string(output.DataSize()) + " bytes, asked for " +
                std::to_string(size));
  }
  auto data = output.Data();
  if (data == nullptr) {
    return fail("output " + output.Name() + " has no data");
  }
  std::memcpy(dst, data.get(), size);
  return 0;
}

}  // extern "C"
