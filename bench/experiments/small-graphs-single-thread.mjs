/**
 * Experiment preload (node --import): every onnxruntime session except the encoder runs on the calling thread
 * (intraOpNumThreads 1, no intra-op pool). What src/inference/onnx-runtime.ts would do for the sequence model and
 * the adapter; used by onnx-threads.ts to measure the server with it, without changing src/.
 */
import * as ort from 'onnxruntime-node';

const create = ort.InferenceSession.create.bind(ort.InferenceSession);
ort.InferenceSession.create = (file, options = {}) =>
  create(file, typeof file === 'string' && !/encoder/.test(file) ? { ...options, intraOpNumThreads: 1, interOpNumThreads: 1 } : options);
