// The ONNX protobuf classes (onnx::ModelProto, ...), checker and shape inference from Debian's
// libonnx-dev, for the files that build or read ONNX models (the exporter and
// its tests).
//
// libonnx-dev is built with ONNX_ML=1 and ships only the ONNX-ML classes
// (onnx/onnx-ml.pb.h), which onnx/onnx_pb.h picks when ONNX_ML is defined; its
// CMake targets would put that define (and ONNX_NAMESPACE) on every source of
// whatever links them, so instead the few files that include ONNX headers get
// them here and the library is linked by path (CMakeLists.txt).
#pragma once

#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
