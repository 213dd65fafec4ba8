/** @module @dermagpu/core */
export {};
