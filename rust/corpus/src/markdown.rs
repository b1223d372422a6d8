//! The corpus as markdown files, one per node, for tools that search plain
//! files (the ripgrep comparison).

use crate::CorpusNode;

impl CorpusNode {
    /// Where the node's file goes, relative to the corpus directory:
    /// `tasks/<id>.md`, `notes/<id>.md` or `journal/<id>.md`.
    pub fn markdown_path(&self) -> String {
        let dir = match self.kind {
            heph_core::Kind::Task => "tasks",
            heph_core::Kind::Note => "notes",
            heph_core::Kind::Journal => "journal",
        };
        format!("{dir}/{}.md", self.id)
    }

    /// The node as a markdown file: YAML front matter, then the body.
    pub fn markdown(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 200);
        out.push_str("---\n");
        out.push_str(&format!("title: {}\n", self.title));
        out.push_str(&format!("kind: {}\n", self.kind));
        if let Some(status) = self.status {
            out.push_str(&format!("status: {status}\n"));
        }
        if let Some(due) = self.due {
            out.push_str(&format!("due: {}\n", heph_core::model::format_date(due)));
        }
        if let Some(project) = &self.project {
            out.push_str(&format!("project: {project}\n"));
        }
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        out.push_str(&format!("tags: [{}]\n", tags.join(", ")));
        out.push_str("---\n\n");
        out.push_str(&format!("# {}\n\n", self.title));
        out.push_str(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::Corpus;

    #[test]
    fn markdown_holds_title_fields_and_body() {
        let corpus = Corpus::new(7, 3000);
        let node = corpus.nodes().find(|n| n.project.is_some()).unwrap();
        let text = node.markdown();
        assert!(text.starts_with("---\ntitle: "));
        assert!(text.contains(&format!("project: {}\n", node.project.as_deref().unwrap())));
        assert!(text.ends_with(&node.body));
        assert!(node.markdown_path().ends_with(&format!("{}.md", node.id)));
    }
}
