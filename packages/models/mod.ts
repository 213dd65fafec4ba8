/** @module @dermagpu/models */
export {};
