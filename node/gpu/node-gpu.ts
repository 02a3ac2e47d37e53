/**
 * WebGPU in Node through Dawn (the `webgpu` npm package), for the CLI, tests and benchmarks.
 * Node only: the browser bundle never imports this file.
 */
import { create, globals } from 'webgpu';

let gpu: GPU | null = null;

/** The process-wide Dawn GPU object (installs the WebGPU globals such as GPUBufferUsage once). */
export function nodeGpu(): GPU {
  if (!gpu) {
    Object.assign(globalThis, globals);
    gpu = create([]) as GPU;
  }
  return gpu;
}
