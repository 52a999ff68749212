function joinNames(names) {
  return names.join(', ');
}

module.exports = { joinNames };
