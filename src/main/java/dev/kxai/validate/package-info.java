/** Validation against reference outputs (Captum's): a user-facing feature and the test suite's oracle. */
package dev.kxai.validate;
