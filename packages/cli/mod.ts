/** @module @dermagpu/cli */
export {};
